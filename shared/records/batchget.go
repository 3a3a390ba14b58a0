package records

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/satellite-gateway/gateway/shared/backoff"
	"github.com/satellite-gateway/gateway/shared/resources"
)

// BatchGetter is the DynamoDB call GetAll makes.
type BatchGetter interface {
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

var _ BatchGetter = (*dynamodb.Client)(nil)

// maxBatchGet is DynamoDB's limit of keys per BatchGetItem.
const maxBatchGet = 100

// batchGetAttempts bounds the retries of keys DynamoDB left unprocessed
// (throttling): enough to ride out a burst, few enough that a caller's
// timeout is not spent here.
const batchGetAttempts = 8

// The pauses between those retries: from 25 ms, doubling to 1.6 s.
const (
	batchGetMinPause = 25 * time.Millisecond
	batchGetMaxPause = 1600 * time.Millisecond
)

// KeyOf is the primary key of an item (a table item, or an index item, which
// carries the table's keys too).
func KeyOf(item map[string]types.AttributeValue) Key {
	var k Key
	if v, ok := item[resources.PartitionKey].(*types.AttributeValueMemberS); ok {
		k.PK = v.Value
	}
	if v, ok := item[resources.SortKey].(*types.AttributeValueMemberS); ok {
		k.SK = v.Value
	}
	return k
}

// GetAll reads the items of keys from table, in requests of 100 keys,
// retrying the keys DynamoDB leaves unprocessed with a jittered, growing
// pause that honours ctx. Items that do not exist are absent from the map.
// consistent asks for strongly consistent reads.
func GetAll(ctx context.Context, db BatchGetter, table string, keys []Key, consistent bool) (map[Key]map[string]types.AttributeValue, error) {
	out := make(map[Key]map[string]types.AttributeValue, len(keys))
	for chunk := range slices.Chunk(keys, maxBatchGet) {
		req := make([]map[string]types.AttributeValue, len(chunk))
		for i, k := range chunk {
			req[i] = k.Item()
		}
		pending := map[string]types.KeysAndAttributes{table: {Keys: req, ConsistentRead: aws.Bool(consistent)}}
		pause := backoff.Backoff{Min: batchGetMinPause, Max: batchGetMaxPause}
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt == batchGetAttempts {
				return nil, fmt.Errorf("records: %d keys still unprocessed after %d attempts", len(pending[table].Keys), attempt)
			}
			if attempt > 0 {
				if err := pause.Wait(ctx); err != nil {
					return nil, err
				}
			}
			res, err := db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
			if err != nil {
				return nil, fmt.Errorf("records: batch get: %w", err)
			}
			for _, item := range res.Responses[table] {
				out[KeyOf(item)] = item
			}
			pending = res.UnprocessedKeys
		}
	}
	return out, nil
}
