package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/satellite-gateway/gateway/shared/identity"
	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/s3keys"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
)

// updates answers GET /updates from one read of the satellite's downlink
// item: 204 before anything was assembled, 304 when If-None-Match names the
// current version (S3 untouched), else 307 to a presigned GET of the
// tarball. The key is rebuilt from the caller's identity and the version,
// so even a corrupt item cannot point a satellite at another's tarball.
func (h *Handler) updates(ctx context.Context, id identity.Identity, ifNoneMatch string) (response, error) {
	out, err := h.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(h.cfg.Table),
		Key:                      records.Updates(id.Factory, id.Satellite).Item(),
		ProjectionExpression:     aws.String("#v"),
		ExpressionAttributeNames: map[string]string{"#v": "version"},
	})
	if err != nil {
		return response{}, fmt.Errorf("read downlink state: %w", err)
	}
	var st records.UpdatesState
	if err := attributevalue.UnmarshalMap(out.Item, &st); err != nil {
		return response{}, fmt.Errorf("decode downlink state: %w", err)
	}
	if st.Version == "" {
		return response{status: http.StatusNoContent}, nil
	}
	etag := gatewayapi.FormatETag(st.Version)
	if gatewayapi.MatchETag(ifNoneMatch, st.Version) {
		return response{status: http.StatusNotModified, headers: map[string]string{"ETag": etag}}, nil
	}
	key, err := s3keys.Update(id.Factory, id.Satellite, st.Version)
	if err != nil {
		return response{}, fmt.Errorf("downlink key: %w", err)
	}
	signed, err := h.sign.PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(h.cfg.Bucket),
		Key:    aws.String(key),
	}, s3.WithPresignExpires(h.cfg.PresignExpiry))
	if err != nil {
		return response{}, fmt.Errorf("presign GET %s: %w", key, err)
	}
	return response{status: http.StatusTemporaryRedirect, headers: map[string]string{
		"Location": signed.URL,
		"ETag":     etag,
	}}, nil
}
