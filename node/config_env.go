package node

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// EnvVar is one environment variable the configuration understands, with
// the key it sets and the built-in default, as `registryd env` prints it.
type EnvVar struct {
	Name, Key, Default string
	// Secret values are never printed, only whether they are set.
	Secret bool
}

// EnvVars lists every environment variable with its default.
func EnvVars() []EnvVar {
	var out []EnvVar
	walkFields(reflect.ValueOf(DefaultConfig()), "", func(path string, f reflect.Value) error {
		out = append(out, EnvVar{Name: envName(path), Key: path, Default: formatValue(f), Secret: secretKey(path)})
		return nil
	})
	return out
}

// secretKey marks keys whose values are credentials.
func secretKey(path string) bool {
	last := path[strings.LastIndex(path, ".")+1:]
	return last == "secret" || last == "token" || last == "secretkey" || last == "accesskey"
}

func formatValue(f reflect.Value) string {
	switch {
	case f.Type() == reflect.TypeOf(time.Duration(0)):
		if f.Int() == 0 {
			return "0"
		}
		return time.Duration(f.Int()).String()
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		return strings.Join(f.Interface().([]string), ",")
	case f.Kind() == reflect.Slice:
		if f.Len() == 0 {
			return ""
		}
		return fmt.Sprintf("(%d entries; YAML only)", f.Len())
	}
	return fmt.Sprint(f.Interface())
}
