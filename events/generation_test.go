package events

import (
	"errors"
	"testing"
)

func TestEveryDecoderHasAGeneration(t *testing.T) {
	for typ, versions := range decoders {
		for v := range versions {
			g, err := GenerationOf(typ, v)
			if err != nil {
				t.Errorf("%s v%d has a decoder but no generation: %v", typ, v, err)
				continue
			}
			if g < BaselineGeneration || g > Generation() {
				t.Errorf("%s v%d: generation %d outside [%d, %d]", typ, v, g, BaselineGeneration, Generation())
			}
		}
	}
	for typ, versions := range generations {
		for v := range versions {
			if _, ok := decoders[typ][v]; !ok {
				t.Errorf("%s v%d has a generation but no decoder", typ, v)
			}
		}
	}
}

func TestGenerationOfUnknown(t *testing.T) {
	for _, tc := range []struct {
		typ  Type
		v    int
		want error
	}{
		{"FromTheFuture", 1, ErrUnknownType},
		{TypeTagSet, 99, ErrUnknownVersion},
	} {
		if _, err := GenerationOf(tc.typ, tc.v); !errors.Is(err, tc.want) {
			t.Errorf("GenerationOf(%s, %d) = %v, want %v", tc.typ, tc.v, err, tc.want)
		}
	}
}
