package records_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/satellite-gateway/gateway/shared/records"
)

// fakeBatch holds items by key; it leaves the first `unprocess` keys of each
// request unprocessed the first time it sees them, as a throttled table does.
type fakeBatch struct {
	items     map[records.Key]map[string]types.AttributeValue
	unprocess int
	held      map[records.Key]bool
	calls     int
	err       error
}

func (f *fakeBatch) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}, UnprocessedKeys: map[string]types.KeysAndAttributes{}}
	for table, ka := range in.RequestItems {
		if len(ka.Keys) > 100 {
			return nil, fmt.Errorf("%d keys in one request", len(ka.Keys))
		}
		for i, k := range ka.Keys {
			key := records.KeyOf(k)
			if i < f.unprocess && !f.held[key] {
				f.held[key] = true
				u := out.UnprocessedKeys[table]
				u.Keys = append(u.Keys, k)
				out.UnprocessedKeys[table] = u
				continue
			}
			if item := f.items[key]; item != nil {
				out.Responses[table] = append(out.Responses[table], item)
			}
		}
	}
	return out, nil
}

func TestGetAll(t *testing.T) {
	f := &fakeBatch{items: map[records.Key]map[string]types.AttributeValue{}, unprocess: 3, held: map[records.Key]bool{}}
	var keys []records.Key
	for i := range 250 {
		k := records.Key{PK: fmt.Sprint("P", i), SK: "S"}
		keys = append(keys, k)
		if i%10 != 0 { // every tenth is missing
			f.items[k] = k.Item()
		}
	}
	got, err := records.GetAll(t.Context(), f, "t", keys, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 225 {
		t.Errorf("%d items, want the 225 that exist", len(got))
	}
	for _, k := range keys {
		if (got[k] != nil) != (f.items[k] != nil) {
			t.Errorf("key %v: got %v", k, got[k])
		}
	}
	// 3 requests of at most 100, each retried once for its unprocessed keys.
	if f.calls != 6 {
		t.Errorf("%d calls, want 6", f.calls)
	}

	boom := errors.New("throttled")
	if _, err := records.GetAll(t.Context(), &fakeBatch{err: boom}, "t", keys[:1], false); !errors.Is(err, boom) {
		t.Errorf("error %v, want the call's", err)
	}
	// A table that never processes a key: the attempts are bounded.
	stuck := &stuckBatch{}
	if _, err := records.GetAll(t.Context(), stuck, "t", keys[:1], false); err == nil || stuck.calls != 8 {
		t.Errorf("stuck table: %v after %d calls, want an error after 8", err, stuck.calls)
	}
}

type stuckBatch struct{ calls int }

func (s *stuckBatch) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	s.calls++
	return &dynamodb.BatchGetItemOutput{UnprocessedKeys: in.RequestItems}, nil
}
