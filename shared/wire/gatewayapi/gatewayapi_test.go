package gatewayapi_test

import (
	"strings"
	"testing"

	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
)

const (
	batch = "01JD8X3V5Q2Z7N4M6K8P0R1S2Z"
	sum   = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

func TestPresignRequestValidate(t *testing.T) {
	good := gatewayapi.PresignRequest{Batch: batch, Size: 10, SHA256: sum}
	if err := good.Validate(); err != nil {
		t.Fatalf("good request refused: %v", err)
	}
	for name, c := range map[string]struct {
		r    gatewayapi.PresignRequest
		want string
	}{
		"lowercase batch": {gatewayapi.PresignRequest{Batch: strings.ToLower(batch), Size: 1, SHA256: sum}, "ULID"},
		"zero size":       {gatewayapi.PresignRequest{Batch: batch, Size: 0, SHA256: sum}, "positive"},
		"negative size":   {gatewayapi.PresignRequest{Batch: batch, Size: -1, SHA256: sum}, "positive"},
		"over limit":      {gatewayapi.PresignRequest{Batch: batch, Size: gatewayapi.MaxUploadSize + 1, SHA256: sum}, "limit"},
		"upper hex":       {gatewayapi.PresignRequest{Batch: batch, Size: 1, SHA256: strings.ToUpper(sum)}, "sha256"},
		"short hex":       {gatewayapi.PresignRequest{Batch: batch, Size: 1, SHA256: sum[:62]}, "sha256"},
		"not hex":         {gatewayapi.PresignRequest{Batch: batch, Size: 1, SHA256: strings.Repeat("g", 64)}, "sha256"},
	} {
		err := c.r.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", name, err, c.want)
		}
	}
}

func TestMatchETag(t *testing.T) {
	v := sum
	for header, want := range map[string]bool{
		gatewayapi.FormatETag(v):               true,
		"W/" + gatewayapi.FormatETag(v):        true,
		`"other", ` + gatewayapi.FormatETag(v): true,
		"*":                                    true,
		v:                                      false, // unquoted is not an entity tag
		`"other"`:                              false,
		"":                                     false,
		gatewayapi.FormatETag(v[:63]):          false,
	} {
		if got := gatewayapi.MatchETag(header, v); got != want {
			t.Errorf("MatchETag(%q) = %v, want %v", header, got, want)
		}
	}
	if gatewayapi.MatchETag("*", "") {
		t.Error(`"*" matched when nothing was assembled yet`)
	}
}

func TestStateFinal(t *testing.T) {
	if gatewayapi.StatePending.Final() || !gatewayapi.StateIngested.Final() || !gatewayapi.StateRejected.Final() {
		t.Fatal("only ingested and rejected are final")
	}
}
