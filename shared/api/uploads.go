package api

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/satellite-gateway/gateway/shared/identity"
	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/resources"
	"github.com/satellite-gateway/gateway/shared/s3keys"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// presign answers POST /updates/uploads. The ledger entry is created once
// per batch id, with a condition, so concurrent or repeated requests agree
// on one (size, sha256) per batch:
//
//   - no entry: create it pending, sign (201);
//   - an entry with another size or sha256: 409, whatever its state,
//     because answering a final state for other bytes would make the
//     satellite drop a batch the cloud never saw;
//   - pending with the same size and sha256: sign again (201);
//   - ingested or rejected: its status (200), and the satellite drops it.
func (h *Handler) presign(ctx context.Context, id identity.Identity, req events.APIGatewayV2HTTPRequest) (response, error) {
	b, err := body(req)
	if err != nil {
		return response{}, err
	}
	var pr gatewayapi.PresignRequest
	if err := decodeJSON(b, &pr); err != nil {
		return response{}, err
	}
	if pr.Size > gatewayapi.MaxUploadSize {
		return response{}, fail(http.StatusRequestEntityTooLarge, gatewayapi.CodeTooLarge, "size %d is over the %d byte limit", pr.Size, int64(gatewayapi.MaxUploadSize))
	}
	if err := pr.Validate(); err != nil {
		return response{}, fail(http.StatusBadRequest, gatewayapi.CodeBadRequest, "%v", err)
	}

	entry, created, err := h.claimBatch(ctx, id, pr)
	if err != nil {
		return response{}, err
	}
	if !created {
		switch {
		case entry.Size != pr.Size || entry.SHA256 != pr.SHA256:
			return response{}, fail(http.StatusConflict, gatewayapi.CodeConflict,
				"batch %s was announced with another size or sha256", pr.Batch)
		case gatewayapi.State(entry.State).Final():
			return response{status: http.StatusOK, body: statusOf(entry)}, nil
		}
	}
	up, err := h.signUpload(ctx, id, pr)
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusCreated, body: up}, nil
}

// claimBatch creates the batch's ledger entry, or returns the existing one.
func (h *Handler) claimBatch(ctx context.Context, id identity.Identity, pr gatewayapi.PresignRequest) (records.BatchEntry, bool, error) {
	now := h.cfg.Now().UTC()
	entry := records.BatchEntry{
		Batch: pr.Batch, State: string(gatewayapi.StatePending),
		Size: pr.Size, SHA256: pr.SHA256, Created: now, Updated: now,
	}
	key := records.Batch(id.Factory, id.Satellite, pr.Batch)
	item, err := attributevalue.MarshalMap(entry)
	if err != nil {
		return records.BatchEntry{}, false, fmt.Errorf("encode ledger entry %s: %w", pr.Batch, err)
	}
	for k, v := range key.Item() {
		item[k] = v
	}
	item[resources.TTLAttribute] = &types.AttributeValueMemberN{Value: records.ExpiresAt(now.Add(records.BatchRetention))}

	_, err = h.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(h.cfg.Table),
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames:            map[string]string{"#pk": resources.PartitionKey},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return entry, true, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return records.BatchEntry{}, false, fmt.Errorf("create ledger entry %s: %w", pr.Batch, err)
	}
	old := ccf.Item
	if len(old) == 0 {
		// Not every emulator returns the old item with the failure.
		out, err := h.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(h.cfg.Table), Key: key.Item(), ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return records.BatchEntry{}, false, fmt.Errorf("read ledger entry %s: %w", pr.Batch, err)
		}
		if len(out.Item) == 0 {
			// Expired between the two calls; the satellite retries.
			return records.BatchEntry{}, false, fmt.Errorf("ledger entry %s vanished after a failed create", pr.Batch)
		}
		old = out.Item
	}
	var existing records.BatchEntry
	if err := attributevalue.UnmarshalMap(old, &existing); err != nil {
		return records.BatchEntry{}, false, fmt.Errorf("decode ledger entry %s: %w", pr.Batch, err)
	}
	return existing, false, nil
}

// signUpload presigns the PUT of the batch to the satellite's own key,
// bound to the declared length and checksum.
func (h *Handler) signUpload(ctx context.Context, id identity.Identity, pr gatewayapi.PresignRequest) (gatewayapi.Upload, error) {
	key, err := s3keys.Upload(id.Factory, id.Satellite, pr.Batch)
	if err != nil {
		return gatewayapi.Upload{}, fmt.Errorf("upload key: %w", err)
	}
	sum, err := hex.DecodeString(pr.SHA256) // validated above
	if err != nil {
		return gatewayapi.Upload{}, fmt.Errorf("sha256: %w", err)
	}
	expires := h.cfg.Now().UTC().Add(h.cfg.PresignExpiry).Truncate(time.Second)
	signed, err := h.sign.PresignPutObject(ctx, &s3.PutObjectInput{
		Bucket:         aws.String(h.cfg.Bucket),
		Key:            aws.String(key),
		ContentLength:  aws.Int64(pr.Size),
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum)),
	}, s3.WithPresignExpires(h.cfg.PresignExpiry))
	if err != nil {
		return gatewayapi.Upload{}, fmt.Errorf("presign PUT %s: %w", key, err)
	}
	headers := map[string]string{}
	for k, vs := range signed.SignedHeader {
		// The client derives Host from the URL.
		if !strings.EqualFold(k, "Host") {
			headers[k] = strings.Join(vs, ",")
		}
	}
	return gatewayapi.Upload{
		Batch: pr.Batch, State: gatewayapi.StatePending,
		URL: signed.URL, Method: signed.Method, Headers: headers, Expires: expires,
	}, nil
}

// uploadStatus answers GET /updates/uploads/{batch} from the ledger.
func (h *Handler) uploadStatus(ctx context.Context, id identity.Identity, batch string) (response, error) {
	if !uplink.ValidID(batch) {
		return response{}, fail(http.StatusBadRequest, gatewayapi.CodeBadRequest, "batch %q is not a canonical ULID", batch)
	}
	// Consistent: a satellite asks right after its upload, and an
	// eventually consistent read could still miss the entry (404).
	out, err := h.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(h.cfg.Table),
		Key:            records.Batch(id.Factory, id.Satellite, batch).Item(),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return response{}, fmt.Errorf("read ledger entry %s: %w", batch, err)
	}
	if len(out.Item) == 0 {
		return response{}, fail(http.StatusNotFound, gatewayapi.CodeNotFound, "no upload URL was issued for batch %s", batch)
	}
	var e records.BatchEntry
	if err := attributevalue.UnmarshalMap(out.Item, &e); err != nil {
		return response{}, fmt.Errorf("decode ledger entry %s: %w", batch, err)
	}
	return response{status: http.StatusOK, body: statusOf(e)}, nil
}

func statusOf(e records.BatchEntry) gatewayapi.Status {
	return gatewayapi.Status{
		Batch: e.Batch, State: gatewayapi.State(e.State), Seq: e.Seq,
		Events: e.Events, RejectedEvents: e.RejectedEvents,
		Code: e.Code, Reason: e.Reason, Updated: e.Updated.UTC(),
	}
}
