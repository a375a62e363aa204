package check

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/airlock-mcp/airlock/internal/config"
)

// A JSON Schema (draft 2020-12) node, as plain data.
type schema = map[string]any

// durationPattern matches what time.ParseDuration accepts ("25s", "1h30m",
// "1.5h", "0"): airlock.yaml's durations are strings.
const durationPattern = `^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`

// enums are the closed sets of values internal/config's validation
// accepts for string fields, by YAML path ([] for any list element).
// A value outside them fails `airlock validate`; the schema says so at
// `helm install` time already.
var enums = map[string][]string{
	"log.level":                       {"debug", "info", "warn", "error"},
	"log.format":                      {"json", "text"},
	"audit.spool.full_policy":         {string(config.DropNewest), string(config.FailClosed)},
	"notifications.webhooks[].format": {config.FormatGeneric, config.FormatSlack},
}

// ConfigSchema reflects internal/config's Config into a JSON Schema:
// every object closed (additionalProperties: false, as airlock's strict
// YAML decoding refuses unknown keys), every scalar typed, durations
// matched by pattern, and the known closed sets as enums. It is written
// by hand rather than with a reflection library because the config types
// carry YAML tags and time.Duration (a string in airlock.yaml, an integer
// to a JSON reflector) and the enums above.
//
// docs, from FieldDocs, gives each field its description.
func ConfigSchema(docs map[string]string) schema {
	s, _ := configSchema(docs)
	return s
}

// configSchema also returns every YAML path it reached, so a test can
// hold the enums table to paths that exist.
func configSchema(docs map[string]string) (schema, map[string]bool) {
	r := reflector{docs: docs, paths: map[string]bool{}}
	return r.reflectType(reflect.TypeFor[config.Config](), ""), r.paths
}

type reflector struct {
	docs  map[string]string // "Type.Field" → its doc comment
	paths map[string]bool
}

func (r reflector) reflectType(t reflect.Type, path string) schema {
	r.paths[path] = true
	if t == reflect.TypeFor[time.Duration]() {
		return schema{"type": "string", "pattern": durationPattern}
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := r.reflectType(t.Elem(), path)
		if typ, ok := s["type"].(string); ok {
			s["type"] = []any{typ, "null"}
		}
		return s
	case reflect.Struct:
		props := schema{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				panic(fmt.Sprintf("config schema: field %s.%s has no yaml name", t.Name(), f.Name))
			}
			fs := r.reflectType(f.Type, join(path, name))
			if d := r.docs[t.Name()+"."+f.Name]; d != "" {
				fs["description"] = d
			}
			props[name] = fs
		}
		return schema{"type": "object", "additionalProperties": false, "properties": props}
	case reflect.Slice, reflect.Array:
		return schema{"type": []any{"array", "null"}, "items": r.reflectType(t.Elem(), path+"[]")}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			panic(fmt.Sprintf("config schema: %s: map keys must be strings", path))
		}
		return schema{"type": "object", "additionalProperties": r.reflectType(t.Elem(), path+"[]")}
	case reflect.String:
		s := schema{"type": "string"}
		if e, ok := enums[path]; ok {
			s["enum"] = e
		}
		return s
	case reflect.Bool:
		return schema{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return schema{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return schema{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return schema{"type": "number"}
	}
	panic(fmt.Sprintf("config schema: %s: no JSON Schema for Go kind %s", path, t.Kind()))
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// FieldDocs reads the doc comments of the struct fields declared in the
// Go files of dir (internal/config), keyed "Type.Field": what the
// configuration reference says about each field, for the schema's
// descriptions.
func FieldDocs(dir string) (map[string]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	docs := map[string]string{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return false
			}
			for _, fld := range st.Fields.List {
				text := fld.Doc.Text()
				if text == "" {
					text = fld.Comment.Text()
				}
				text = strings.Join(strings.Fields(text), " ")
				for _, id := range fld.Names {
					if text != "" {
						docs[ts.Name.Name+"."+id.Name] = text
					}
				}
			}
			return false
		})
	}
	return docs, nil
}

// ValuesSchema is the chart's values.schema.json: base (the chart's own
// keys, schema/chart.json) with ConfigSchema as the `config` property,
// indented and ending in a newline.
func ValuesSchema(base []byte, docs map[string]string) ([]byte, error) {
	var s schema
	if err := json.Unmarshal(base, &s); err != nil {
		return nil, fmt.Errorf("chart schema base: %w", err)
	}
	props, ok := s["properties"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("chart schema base: no properties object")
	}
	c := ConfigSchema(docs)
	c["description"] = "airlock.yaml (docs/configuration.md); generated from internal/config's types"
	props["config"] = c
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
