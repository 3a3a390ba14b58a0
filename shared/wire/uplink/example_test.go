package uplink_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// A satellite stages a batch and writes it as a tarball; the cloud streams
// it back, event by event, and trusts it only once Next reports io.EOF.
func Example() {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	device := "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"

	b, err := uplink.NewBuilder(os.TempDir(), uplink.Limits{})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	_ = b.Add(uplink.Event{Type: uplink.TypeCheckIn, ID: "01JD8X3V5Q2Z7N4M6K8P0R1S21",
		Details: &uplink.CheckIn{Device: device, Time: at, Target: "lmp-42"}})
	_ = b.Add(uplink.Event{Type: uplink.TypePutFile, ID: "01JD8X3V5Q2Z7N4M6K8P0R1S22",
		Details: &uplink.PutFile{Device: device, Name: "aktoml", Attachment: uplink.AttachmentName(device, "aktoml"), Time: at}})
	_ = b.AddAttachment(device, "aktoml", strings.NewReader("[pacman]\n"))

	var tarball bytes.Buffer
	m, err := b.WriteTarball(&tarball, uplink.Manifest{
		Factory: "acme", Satellite: "sat-1", Batch: "01JD8X3V5Q2Z7N4M6K8P0R1S2Z", Seq: 1, Created: at,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("wrote batch", m.Seq, "with", m.EventCount, "events")

	r := uplink.NewReader(&tarball, uplink.Limits{})
	for {
		it, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Println("refused:", uplink.CodeOf(err))
			return
		}
		switch it.Kind {
		case uplink.KindEvent:
			fmt.Println("event", it.Event.Type)
		case uplink.KindAttachment:
			content, _ := io.ReadAll(it.Attachment)
			fmt.Printf("attachment %s: %q\n", it.Attachment.File, content)
		}
	}
	fmt.Println("verified:", r.Summary().Events, "events")
	// Output:
	// wrote batch 1 with 2 events
	// event check-in
	// event put-file
	// attachment aktoml: "[pacman]\n"
	// verified: 2 events
}
