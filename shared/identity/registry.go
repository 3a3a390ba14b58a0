package identity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/resources"
)

// ParseCA decodes a factory CA certificate: exactly one PEM certificate
// that is a CA and carries a subject key id, which the certificates it
// issues name as their AuthorityKeyId and by which the registry finds it.
func ParseCA(caPEM []byte) (*x509.Certificate, error) {
	block, rest := pem.Decode(caPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("more than one PEM block: register each CA on its own")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", cert.Subject)
	}
	if len(cert.SubjectKeyId) == 0 {
		return nil, fmt.Errorf("%s has no subject key id; satellite certificates could not name it", cert.Subject)
	}
	return cert, nil
}

// Fingerprint is the lowercase hex sha256 of a certificate's DER bytes, as
// `openssl x509 -noout -fingerprint -sha256` prints it (without colons).
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// AdminDynamoDB is what the registry's write helpers call.
type AdminDynamoDB interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

var _ AdminDynamoDB = (*dynamodb.Client)(nil)

// Registry edits the factory CA registry; the operator CLI is its user.
// (Satellite registry entries come from `satellite` change events, through
// the change function.)
type Registry struct {
	db    AdminDynamoDB
	table string
	now   func() time.Time
}

// NewRegistry returns a Registry of table. now may be nil (time.Now).
func NewRegistry(db AdminDynamoDB, table string, now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{db: db, table: table, now: now}
}

// AddCA registers caPEM as a CA issuing satellite certificates for
// factory. Adding the same CA for the same factory again succeeds and
// refreshes its entry; a CA (or another certificate with its key)
// registered for another factory is refused, because the factory of a
// satellite is derived from its CA and must have one answer.
func (r *Registry) AddCA(ctx context.Context, factory string, caPEM []byte) (records.CAEntry, error) {
	if err := records.CheckNames(factory, "ca"); err != nil {
		return records.CAEntry{}, fmt.Errorf("identity: add CA: %w", err)
	}
	cert, err := ParseCA(caPEM)
	if err != nil {
		return records.CAEntry{}, fmt.Errorf("identity: add CA: %w", err)
	}
	keyID := hex.EncodeToString(cert.SubjectKeyId)
	same, err := queryCAs(ctx, r.db, r.table, keyID)
	if err != nil {
		return records.CAEntry{}, fmt.Errorf("identity: add CA %s: %w", keyID, err)
	}
	for _, e := range same {
		if e.Factory != factory {
			return records.CAEntry{}, fmt.Errorf("identity: add CA %s: its key is already registered for factory %q (certificate %s)", cert.Subject, e.Factory, e.Fingerprint)
		}
	}
	fp := Fingerprint(cert)
	e := records.CAEntry{
		KeyID:       keyID,
		Fingerprint: fp,
		Factory:     factory,
		Subject:     cert.Subject.String(),
		NotAfter:    cert.NotAfter.UTC(),
		PEM:         string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
		Added:       r.now().UTC(),
		GSI1PK:      records.FactoryGSI1(factory),
		GSI1SK:      records.CAPrefix + fp,
	}
	item, err := marshalItem(records.CA(keyID, fp), e)
	if err != nil {
		return records.CAEntry{}, fmt.Errorf("identity: add CA %s: %w", keyID, err)
	}
	_, err = r.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           aws.String(r.table),
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(#pk) OR #factory = :factory"),
		ExpressionAttributeNames: map[string]string{
			"#pk": resources.PartitionKey, "#factory": "factory",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":factory": &types.AttributeValueMemberS{Value: factory},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return records.CAEntry{}, fmt.Errorf("identity: add CA %s: registered for another factory meanwhile", cert.Subject)
	}
	if err != nil {
		return records.CAEntry{}, fmt.Errorf("identity: add CA %s: %w", keyID, err)
	}
	return e, nil
}

// RemoveCA removes caPEM from the registry. Satellites it issued are
// refused once the resolvers' CA caches expire (Config.CATTL). Removing a
// CA that is not registered is an error, so that a typo does not pass for
// a revocation.
func (r *Registry) RemoveCA(ctx context.Context, caPEM []byte) error {
	cert, err := ParseCA(caPEM)
	if err != nil {
		return fmt.Errorf("identity: remove CA: %w", err)
	}
	key := records.CA(hex.EncodeToString(cert.SubjectKeyId), Fingerprint(cert))
	out, err := r.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:    aws.String(r.table),
		Key:          key.Item(),
		ReturnValues: types.ReturnValueAllOld,
	})
	if err != nil {
		return fmt.Errorf("identity: remove CA %s: %w", cert.Subject, err)
	}
	if len(out.Attributes) == 0 {
		return fmt.Errorf("identity: remove CA %s: not registered", cert.Subject)
	}
	return nil
}

// ListCAs returns the CAs registered for factory, from GSI1.
func (r *Registry) ListCAs(ctx context.Context, factory string) ([]records.CAEntry, error) {
	var out []records.CAEntry
	in := &dynamodb.QueryInput{
		TableName:              aws.String(r.table),
		IndexName:              aws.String(resources.BySatellite.Name),
		KeyConditionExpression: aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExpressionAttributeNames: map[string]string{
			"#pk": resources.BySatellite.PartitionKey, "#sk": resources.BySatellite.SortKey,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":     &types.AttributeValueMemberS{Value: records.FactoryGSI1(factory)},
			":prefix": &types.AttributeValueMemberS{Value: records.CAPrefix},
		},
	}
	// The index holds keys only (see resources.BySatellite): it names the
	// partitions, CA#<key id>, whose entries are then read from the table.
	var partitions []string
	seen := map[string]bool{}
	p := dynamodb.NewQueryPaginator(r.db, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("identity: list CAs of %s: %w", factory, err)
		}
		for _, item := range page.Items {
			pk, _ := item[resources.PartitionKey].(*types.AttributeValueMemberS)
			if pk != nil && !seen[pk.Value] {
				seen[pk.Value] = true
				partitions = append(partitions, pk.Value)
			}
		}
	}
	for _, pk := range partitions {
		es, err := queryPartition(ctx, r.db, r.table, pk)
		if err != nil {
			return nil, fmt.Errorf("identity: list CAs of %s: %w", factory, err)
		}
		for _, e := range es {
			if e.Factory == factory {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// queryCAs reads every registry entry with the subject key id keyID.
func queryCAs(ctx context.Context, db dynamodb.QueryAPIClient, table, keyID string) ([]records.CAEntry, error) {
	return queryPartition(ctx, db, table, records.CAPK(keyID))
}

// queryPartition reads every registry entry of one CA partition.
func queryPartition(ctx context.Context, db dynamodb.QueryAPIClient, table, pk string) ([]records.CAEntry, error) {
	var out []records.CAEntry
	p := dynamodb.NewQueryPaginator(db, &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": resources.PartitionKey},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		var es []records.CAEntry
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &es); err != nil {
			return nil, fmt.Errorf("decode CA entries: %w", err)
		}
		out = append(out, es...)
	}
	return out, nil
}

// getSatellite reads a satellite's registry entry. An eventually
// consistent read is enough: the cache already delays changes by more.
func getSatellite(ctx context.Context, db DynamoDB, table, factory, satellite string) (records.Satellite, bool, error) {
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(table),
		Key:       records.Registry(factory, satellite).Item(),
	})
	if err != nil {
		return records.Satellite{}, false, err
	}
	if len(out.Item) == 0 {
		return records.Satellite{}, false, nil
	}
	var s records.Satellite
	if err := attributevalue.UnmarshalMap(out.Item, &s); err != nil {
		return records.Satellite{}, false, fmt.Errorf("decode registry entry: %w", err)
	}
	return s, true, nil
}

// marshalItem is v's attributes plus the item's key.
func marshalItem(key records.Key, v any) (map[string]types.AttributeValue, error) {
	item, err := attributevalue.MarshalMap(v)
	if err != nil {
		return nil, err
	}
	for k, av := range key.Item() {
		item[k] = av
	}
	return item, nil
}
