package envoy

import (
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	"google.golang.org/protobuf/proto"
)

// RouterFilter is the router, the last HTTP filter.
const RouterFilter = "envoy.filters.http.router"

func routerConfig(*Model, bool) proto.Message { return &routerv3.Router{} }
