package envoy

import (
	"errors"
	"fmt"
	"strings"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

type validator interface{ ValidateAll() error }

// ValidateDeep runs the proto's ValidateAll and then, since ValidateAll does
// not descend into google.protobuf.Any, unpacks every Any (each typed_config)
// and validates what is inside, recursively. An Any whose type is unknown to
// this binary is an error: Envoy would reject it too.
func ValidateDeep(m proto.Message) error {
	var errs []error
	walk(m.ProtoReflect(), string(m.ProtoReflect().Descriptor().Name()), &errs)
	return errors.Join(errs...)
}

func walk(m protoreflect.Message, path string, errs *[]error) {
	if v, ok := m.Interface().(validator); ok {
		if err := v.ValidateAll(); err != nil {
			*errs = append(*errs, fmt.Errorf("%s: %w", path, err))
		}
	}
	if a, ok := m.Interface().(*anypb.Any); ok {
		if emptyFilterConfig(a, path) {
			return
		}
		inner, err := a.UnmarshalNew()
		if err != nil {
			*errs = append(*errs, fmt.Errorf("%s: cannot unpack %s: %w", path, a.GetTypeUrl(), err))
			return
		}
		walk(inner.ProtoReflect(), path+"<"+string(inner.ProtoReflect().Descriptor().FullName())+">", errs)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		name := path + "." + string(fd.Name())
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walk(l.Get(i).Message(), fmt.Sprintf("%s[%d]", name, i), errs)
			}
		case fd.IsMap():
			if fd.MapValue().Kind() != protoreflect.MessageKind {
				return true
			}
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				walk(mv.Message(), fmt.Sprintf("%s[%v]", name, k.Interface()), errs)
				return true
			})
		default:
			walk(v.Message(), name, errs)
		}
		return true
	})
}

// Validate checks every resource deeply, and that no target's responses
// can bypass masking (checkResponseBodyModes).
func (d *Dynamic) Validate() error {
	var errs []error
	for _, m := range []proto.Message{d.Listener, d.BaseScope} {
		if err := ValidateDeep(m); err != nil {
			errs = append(errs, err)
		}
	}
	if err := checkResponseBodyModes(d.Listener, d.BaseScope.GetRouteConfiguration()); err != nil {
		errs = append(errs, err)
	}
	for _, c := range d.Clusters {
		if err := ValidateDeep(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Validate checks every resource deeply, and that no target's responses
// can bypass masking (checkResponseBodyModes).
func (r *Resources) Validate() error {
	var errs []error
	if err := ValidateDeep(r.Listener); err != nil {
		errs = append(errs, err)
	}
	if err := ValidateDeep(r.Routes); err != nil {
		errs = append(errs, err)
	}
	if err := checkResponseBodyModes(r.Listener, r.Routes); err != nil {
		errs = append(errs, err)
	}
	for _, c := range r.Clusters {
		if err := ValidateDeep(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkResponseBodyModes refuses a data path where a target's responses
// could reach the agent without ext_proc seeing every byte: ext_proc
// disabled on a target route, or a response_body_mode of NONE or
// BUFFERED_PARTIAL (on the filter, or overridden per virtual host or
// route) for a target. Policy may pick a masking profile for any call, so
// every target counts as one that masks. Without an ext_proc filter
// (listen.proc unset) there is no masking to protect.
func checkResponseBodyModes(lis *listenerv3.Listener, rc *routev3.RouteConfiguration) error {
	var proc *extprocv3.ExternalProcessor
	rcs := []*routev3.RouteConfiguration{rc}
	for _, f := range lis.GetFilterChains() {
		for _, nf := range f.GetFilters() {
			hcm := &hcmv3.HttpConnectionManager{}
			if nf.GetTypedConfig().UnmarshalTo(hcm) != nil {
				continue
			}
			if inline := hcm.GetRouteConfig(); inline != nil {
				rcs = append(rcs, inline)
			}
			for _, hf := range hcm.GetHttpFilters() {
				if hf.GetName() != ExtProcFilter {
					continue
				}
				proc = &extprocv3.ExternalProcessor{}
				if err := hf.GetTypedConfig().UnmarshalTo(proc); err != nil {
					return fmt.Errorf("%s: %w", ExtProcFilter, err)
				}
			}
		}
	}
	if proc == nil {
		return nil
	}
	var errs []error
	for _, rc := range rcs {
		errs = append(errs, checkRouteBodyModes(proc, rc)...)
	}
	return errors.Join(errs...)
}

func checkRouteBodyModes(proc *extprocv3.ExternalProcessor, rc *routev3.RouteConfiguration) []error {
	var errs []error
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if !strings.HasPrefix(r.GetRoute().GetCluster(), TargetClusterPref) {
				continue
			}
			mode := proc.GetProcessingMode().GetResponseBodyMode()
			for _, pf := range []map[string]*anypb.Any{vh.GetTypedPerFilterConfig(), r.GetTypedPerFilterConfig()} {
				a := pf[ExtProcFilter]
				if a == nil {
					continue
				}
				per := &extprocv3.ExtProcPerRoute{}
				if err := a.UnmarshalTo(per); err != nil {
					errs = append(errs, fmt.Errorf("route %s: %s: %w", r.GetName(), ExtProcFilter, err))
					continue
				}
				if per.GetDisabled() {
					errs = append(errs, fmt.Errorf("route %s: ext_proc is disabled on a target route: its responses would reach the agent unmasked", r.GetName()))
				}
				if m := per.GetOverrides().GetProcessingMode(); m != nil {
					mode = m.GetResponseBodyMode()
				}
			}
			switch mode {
			case extprocv3.ProcessingMode_STREAMED, extprocv3.ProcessingMode_BUFFERED, extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED:
			default:
				errs = append(errs, fmt.Errorf("route %s: ext_proc response_body_mode %s would let response bytes reach the agent unmasked; use STREAMED, BUFFERED or FULL_DUPLEX_STREAMED", r.GetName(), mode))
			}
		}
	}
	return errs
}

// emptyFilterConfig reports an empty Any as the config of a per-route
// FilterConfig: Envoy reads it as "enable the filter with its listener
// config" (route/v3/route_components.proto FilterConfig: a filter disabled
// by default is turned on for the route), and Envoy Gateway renders it so.
// Anywhere else an empty Any is an error.
func emptyFilterConfig(a *anypb.Any, path string) bool {
	return a.GetTypeUrl() == "" && len(a.GetValue()) == 0 && strings.HasSuffix(path, "<envoy.config.route.v3.FilterConfig>.config")
}
