package expr

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// maxResultDepth bounds the nesting of a converted result.
const maxResultDepth = 100

// maxExactFloat is the largest integer magnitude a float64 holds exactly.
const maxExactFloat = 1 << 53

// toNative converts a CEL value to a plain Go value json.Marshal accepts.
func toNative(v ref.Val, depth int) (any, error) {
	if depth > maxResultDepth {
		return nil, fmt.Errorf("result nested deeper than %d levels", maxResultDepth)
	}
	switch v := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(v), nil
	case types.String:
		return string(v), nil
	case types.Double:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("result %v is not representable in JSON", f)
		}
		return f, nil
	case types.Int:
		if v >= -maxExactFloat && v <= maxExactFloat {
			return float64(v), nil
		}
		return int64(v), nil
	case types.Uint:
		if v <= maxExactFloat {
			return float64(v), nil
		}
		return uint64(v), nil
	case types.Bytes:
		return base64.StdEncoding.EncodeToString(v), nil
	case types.Timestamp:
		return v.Time.UTC().Format(time.RFC3339Nano), nil
	case types.Duration:
		return v.Duration.String(), nil
	case *types.Err:
		return nil, v
	case *types.Unknown:
		return nil, errors.New("result depends on unknown values")
	case *types.Optional:
		if !v.HasValue() {
			return nil, nil
		}
		return toNative(v.GetValue(), depth+1)
	case traits.Mapper:
		return mapToNative(v, depth)
	case traits.Lister:
		return listToNative(v, depth)
	case ref.Type:
		return v.TypeName(), nil
	}
	return nil, fmt.Errorf("result of type %s cannot be converted to JSON", v.Type().TypeName())
}

func mapToNative(m traits.Mapper, depth int) (any, error) {
	size, _ := m.Size().(types.Int)
	out := make(map[string]any, int(max(size, 0)))
	it := m.Iterator()
	for it.HasNext() == types.True {
		k := it.Next()
		key, err := mapKey(k)
		if err != nil {
			return nil, err
		}
		val, ok := m.Find(k)
		if !ok {
			continue
		}
		nv, err := toNative(val, depth+1)
		if err != nil {
			return nil, err
		}
		out[key] = nv
	}
	return out, nil
}

// mapKey turns a CEL map key into a JSON object key.
func mapKey(k ref.Val) (string, error) {
	switch k := k.(type) {
	case types.String:
		return string(k), nil
	case types.Int:
		return strconv.FormatInt(int64(k), 10), nil
	case types.Uint:
		return strconv.FormatUint(uint64(k), 10), nil
	case types.Bool:
		return strconv.FormatBool(bool(k)), nil
	}
	return "", fmt.Errorf("map key of type %s cannot be converted to JSON", k.Type().TypeName())
}

func listToNative(l traits.Lister, depth int) (any, error) {
	size, _ := l.Size().(types.Int)
	out := make([]any, 0, int(max(size, 0)))
	it := l.Iterator()
	for it.HasNext() == types.True {
		nv, err := toNative(it.Next(), depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, nv)
	}
	return out, nil
}

// checkResult enforces the kind a program was compiled for on its result.
func checkResult(out any, want Kind) (any, error) {
	switch want {
	case KindBool:
		if _, ok := out.(bool); !ok {
			return nil, fmt.Errorf("result is %s, want bool", typeName(out))
		}
	case KindString:
		if _, ok := out.(string); !ok {
			return nil, fmt.Errorf("result is %s, want string", typeName(out))
		}
	case KindTimestamp:
		s, ok := out.(string)
		if !ok {
			return nil, fmt.Errorf("result is %s, want timestamp", typeName(out))
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, fmt.Errorf("result %q is not an RFC 3339 timestamp", s)
		}
		return t.UTC().Format(time.RFC3339Nano), nil
	}
	return out, nil
}

// typeName names the JSON type of a converted value for error messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case string:
		return "string"
	case float64, int64, uint64:
		return "number"
	case []any:
		return "list"
	case map[string]any:
		return "map"
	}
	return fmt.Sprintf("%T", v)
}
