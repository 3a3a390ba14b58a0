package identity_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/identity"
	"github.com/satellite-gateway/gateway/shared/identity/identitytest"
	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
)

// TestRegistryOnMoto runs the registry and the resolver against the real
// table layout (localaws.TableInput, with GSI1) on the moto server.
func TestRegistryOnMoto(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	table := awstest.Table(t, nil)
	db := awstest.Clients(t).DynamoDB
	reg := identity.NewRegistry(db, table, nil)
	clk := &clock{t: time.Now()}
	res, err := identity.NewResolver(db, identity.Config{Table: table, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}

	acme := identitytest.NewCA(t, "acme", identitytest.CAOptions{})
	renewed := acme.Reissue(t, identitytest.CAOptions{CommonName: "acme CA renewed"})
	globex := identitytest.NewCA(t, "globex", identitytest.CAOptions{})

	e, err := reg.AddCA(ctx, "acme", acme.PEM)
	if err != nil {
		t.Fatal(err)
	}
	if e.Fingerprint != identity.Fingerprint(acme.Cert) || e.Factory != "acme" || !strings.Contains(e.Subject, "acme satellite CA") || e.PEM == "" {
		t.Fatalf("entry %+v", e)
	}
	// Adding it again is idempotent; a renewal with the same key joins it.
	for _, p := range [][]byte{acme.PEM, renewed.PEM} {
		if _, err := reg.AddCA(ctx, "acme", p); err != nil {
			t.Fatalf("AddCA again: %v", err)
		}
	}
	if _, err := reg.AddCA(ctx, "globex", globex.PEM); err != nil {
		t.Fatal(err)
	}

	// The same CA, or its key, for another factory is refused and leaves
	// the entry as it was.
	for _, p := range [][]byte{acme.PEM, renewed.PEM} {
		if _, err := reg.AddCA(ctx, "globex", p); err == nil || !strings.Contains(err.Error(), `factory "acme"`) {
			t.Fatalf("AddCA for another factory: %v", err)
		}
	}
	got := getCA(t, db, table, acme.Entry())
	if got.Factory != "acme" {
		t.Fatalf("entry changed to %+v", got)
	}

	list, err := reg.ListCAs(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("ListCAs(acme) = %d entries, want the CA and its renewal", len(list))
	}

	// Registered satellites resolve, through the real Query and GetItem.
	putItem(t, db, table, records.Registry("acme", "sat-1"), identitytest.Registration("acme", "sat-1", true))
	for _, ca := range []*identitytest.CA{acme, renewed} {
		id, err := res.Identify(ctx, ca.Issue(t, identitytest.Satellite("acme", "sat-1")).PEM)
		if err != nil || id.Factory != "acme" || id.Satellite != "sat-1" {
			t.Fatalf("Identify: %+v, %v", id, err)
		}
	}
	if _, err := res.Identify(ctx, globex.Issue(t, identitytest.Satellite("acme", "sat-1")).PEM); code(err) != string(gatewayapi.CodeWrongFactory) {
		t.Fatalf("globex CA claiming acme: %v", err)
	}

	// Removal takes effect when the resolver's CA cache expires.
	if err := reg.RemoveCA(ctx, renewed.PEM); err != nil {
		t.Fatal(err)
	}
	if err := reg.RemoveCA(ctx, renewed.PEM); err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Fatalf("RemoveCA twice: %v", err)
	}
	if err := reg.RemoveCA(ctx, acme.PEM); err != nil {
		t.Fatal(err)
	}
	leaf := acme.Issue(t, identitytest.Satellite("acme", "sat-1")).PEM
	if _, err := res.Identify(ctx, leaf); err != nil {
		t.Fatalf("within CATTL: %v", err)
	}
	clk.t = clk.t.Add(identity.DefaultCATTL)
	if _, err := res.Identify(ctx, leaf); code(err) != string(gatewayapi.CodeUnknownCA) {
		t.Fatalf("after removal: %v", err)
	}
}

// TestAddCARefusals: nothing is written for a bad input.
func TestAddCARefusals(t *testing.T) {
	t.Parallel()
	table := awstest.Table(t, nil)
	db := awstest.Clients(t).DynamoDB
	reg := identity.NewRegistry(db, table, nil)
	acme := identitytest.NewCA(t, "acme", identitytest.CAOptions{})
	leaf := acme.Issue(t, identitytest.Satellite("acme", "sat-1"))

	for name, c := range map[string]struct {
		factory string
		pem     []byte
		want    string
	}{
		"not PEM":      {"acme", []byte("hello"), "not a PEM certificate"},
		"a leaf":       {"acme", []byte(leaf.PEM), "not a CA"},
		"a bundle":     {"acme", append(append([]byte{}, acme.PEM...), acme.PEM...), "more than one PEM block"},
		"unsafe name":  {"ac/me", acme.PEM, "not a safe name"},
		"empty factor": {"", acme.PEM, "not a safe name"},
	} {
		if _, err := reg.AddCA(t.Context(), c.factory, c.pem); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	out, err := db.Scan(t.Context(), &dynamodb.ScanInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if out.Count != 0 {
		t.Fatalf("%d items written by refused AddCA calls", out.Count)
	}
}

func getCA(t *testing.T, db *dynamodb.Client, table string, e records.CAEntry) records.CAEntry {
	t.Helper()
	out, err := db.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: identitytest.EntryKey(e).Item()})
	if err != nil {
		t.Fatal(err)
	}
	var got records.CAEntry
	if err := attributevalue.UnmarshalMap(out.Item, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

func putItem(t *testing.T, db *dynamodb.Client, table string, key records.Key, v any) {
	t.Helper()
	item, err := attributevalue.MarshalMap(v)
	if err != nil {
		t.Fatal(err)
	}
	for k, av := range key.Item() {
		item[k] = av
	}
	if _, err := db.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
}
