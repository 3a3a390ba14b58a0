package ingest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/satellite-gateway/gateway/shared/backoff"
	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/resources"
)

// maxBatchWrite is BatchWriteItem's limit of requests per call.
const maxBatchWrite = 25

// maxUnprocessedAttempts bounds the retries of items DynamoDB left
// unprocessed (throttling); after that the message is retried as a whole.
const maxUnprocessedAttempts = 8

// batchWriter sends unconditional puts and deletes in batches of 25 from
// a few workers. Each key always goes to the same worker (by hash), which
// writes in arrival order: two writes of one key in a batch (a duplicated
// event id) then land in a fixed order, so a redelivery converges on the
// same item, and a call never holds one key twice, which DynamoDB refuses.
type batchWriter struct {
	db      Table
	table   string
	sleep   func(context.Context, time.Duration) error
	ctx     context.Context
	cancel  context.CancelFunc
	workers []chan types.WriteRequest
	wg      sync.WaitGroup

	mu  sync.Mutex
	err error
}

func newBatchWriter(ctx context.Context, db Table, table string, workers int,
	sleep func(context.Context, time.Duration) error) *batchWriter {
	ctx, cancel := context.WithCancel(ctx)
	w := &batchWriter{db: db, table: table, sleep: sleep, ctx: ctx, cancel: cancel}
	for range workers {
		ch := make(chan types.WriteRequest, maxBatchWrite)
		w.workers = append(w.workers, ch)
		w.wg.Add(1)
		go w.run(ch)
	}
	return w
}

// put queues an item. It returns the writer's first error, if any, so a
// caller stops feeding a failed writer early.
func (w *batchWriter) put(key records.Key, item map[string]types.AttributeValue) error {
	item[resources.PartitionKey] = &types.AttributeValueMemberS{Value: key.PK}
	item[resources.SortKey] = &types.AttributeValueMemberS{Value: key.SK}
	return w.send(key, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
}

// delete queues the deletion of an item.
func (w *batchWriter) delete(key records.Key) error {
	return w.send(key, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key.Item()}})
}

func (w *batchWriter) send(key records.Key, req types.WriteRequest) error {
	h := fnv.New32a()
	h.Write([]byte(key.PK))
	h.Write([]byte{0})
	h.Write([]byte(key.SK))
	select {
	case w.workers[h.Sum32()%uint32(len(w.workers))] <- req:
		return nil
	case <-w.ctx.Done():
		return w.firstErr()
	}
}

// close flushes everything queued and returns the first error.
func (w *batchWriter) close() error {
	for _, ch := range w.workers {
		close(ch)
	}
	w.wg.Wait()
	err := w.firstErr()
	w.cancel()
	return err
}

func (w *batchWriter) firstErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil && w.ctx.Err() != nil {
		return w.ctx.Err()
	}
	return w.err
}

func (w *batchWriter) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	w.cancel()
}

func (w *batchWriter) run(ch <-chan types.WriteRequest) {
	defer w.wg.Done()
	var buf []types.WriteRequest
	idx := map[string]int{} // key -> position in buf
	flush := func() {
		if len(buf) > 0 && w.ctx.Err() == nil {
			if err := w.flush(buf); err != nil {
				w.fail(err)
			}
		}
		buf, idx = buf[:0], map[string]int{}
	}
	for req := range ch {
		k := requestKey(req)
		if i, ok := idx[k]; ok {
			buf[i] = req // the later write of the key wins, as it would one call later
			continue
		}
		idx[k] = len(buf)
		buf = append(buf, req)
		if len(buf) == maxBatchWrite {
			flush()
		}
	}
	flush()
}

func requestKey(req types.WriteRequest) string {
	m := map[string]types.AttributeValue(nil)
	if req.PutRequest != nil {
		m = req.PutRequest.Item
	} else {
		m = req.DeleteRequest.Key
	}
	pk, _ := m[resources.PartitionKey].(*types.AttributeValueMemberS)
	sk, _ := m[resources.SortKey].(*types.AttributeValueMemberS)
	return pk.Value + "\x00" + sk.Value
}

// flush writes one batch, retrying what DynamoDB leaves unprocessed with
// jittered exponential backoff.
func (w *batchWriter) flush(reqs []types.WriteRequest) error {
	pending := map[string][]types.WriteRequest{w.table: append([]types.WriteRequest(nil), reqs...)}
	pause := writeBackoff(w.sleep)
	for attempt := 0; ; attempt++ {
		out, err := w.db.BatchWriteItem(w.ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
		if err != nil {
			return fmt.Errorf("batch write: %w", err)
		}
		left := out.UnprocessedItems[w.table]
		if len(left) == 0 {
			return nil
		}
		if attempt+1 >= maxUnprocessedAttempts {
			return fmt.Errorf("batch write: %d items still unprocessed after %d attempts", len(left), attempt+1)
		}
		if err := pause.Wait(w.ctx); err != nil {
			return err
		}
		pending = map[string][]types.WriteRequest{w.table: left}
	}
}

// writeBackoff paces the retries of unprocessed writes: jittered, from
// 50 ms doubling to 5 s, so throttled writers spread out instead of retrying
// in step. sleep waits (tests inject one that does not).
func writeBackoff(sleep func(context.Context, time.Duration) error) *backoff.Backoff {
	return &backoff.Backoff{Min: 50 * time.Millisecond, Max: 5 * time.Second, Sleep: sleep}
}

// group runs functions with bounded concurrency and keeps the first error.
type group struct {
	sem  chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

func newGroup(n int) *group { return &group{sem: make(chan struct{}, n)} }

func (g *group) spawn(f func() error) {
	g.sem <- struct{}{}
	g.wg.Add(1)
	go func() {
		defer func() { <-g.sem; g.wg.Done() }()
		if err := f(); err != nil {
			g.mu.Lock()
			g.errs = append(g.errs, err)
			g.mu.Unlock()
		}
	}()
}

func (g *group) wait() error {
	g.wg.Wait()
	return errors.Join(g.errs...)
}
