package s3event_test

import (
	"errors"
	"fmt"

	"github.com/satellite-gateway/gateway/shared/s3event"
)

// A consumer acknowledges S3's test message without processing it, and reads
// object keys already decoded.
func ExampleParse() {
	bodies := []string{
		`{"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "uploads"}`,
		`{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
		  "s3": {"bucket": {"name": "uploads"}, "object": {"key": "uploads/sat+1/b%2B1.tar.gz", "size": 42}}}]}`,
	}
	for _, body := range bodies {
		recs, err := s3event.Parse(body)
		if errors.Is(err, s3event.ErrTestEvent) {
			fmt.Println("skip test event")
			continue
		}
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		for _, r := range recs {
			fmt.Printf("%s %s/%s %d\n", r.EventName, r.S3.Bucket.Name, r.S3.Object.Key, r.S3.Object.Size)
		}
	}
	// Output:
	// skip test event
	// ObjectCreated:Put uploads/uploads/sat 1/b+1.tar.gz 42
}
