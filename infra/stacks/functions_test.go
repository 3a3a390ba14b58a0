package stacks_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/jsii-runtime-go"

	"github.com/satellite-gateway/gateway/infra/internal/cdktest"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
)

// template is the part of a CloudFormation template the grant checks read.
type template struct {
	Resources map[string]struct {
		Type       string         `json:"Type"`
		Properties map[string]any `json:"Properties"`
	} `json:"Resources"`
}

// hash is the suffix CDK adds to logical ids.
var hash = regexp.MustCompile(`[0-9A-F]{8}$`)

// render turns a policy resource (an ARN string, or an intrinsic built from the stack's
// resources) into a readable, hash-free form: StorageBucket.Arn/uploads/*.
func render(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case map[string]any:
		if ga, ok := v["Fn::GetAtt"].([]any); ok {
			return hash.ReplaceAllString(ga[0].(string), "") + "." + ga[1].(string)
		}
		if ref, ok := v["Ref"].(string); ok {
			return hash.ReplaceAllString(ref, "")
		}
		if j, ok := v["Fn::Join"].([]any); ok {
			var b strings.Builder
			for _, part := range j[1].([]any) {
				b.WriteString(render(part))
			}
			return b.String()
		}
	}
	return fmt.Sprint(v)
}

// grants returns, per function logical id prefix, its role's statements as "action resource"
// lines (plus " if <condition>" where there is one), sorted.
func grants(t *testing.T, raw []byte) map[string][]string {
	t.Helper()
	var tmpl template
	if err := json.Unmarshal(raw, &tmpl); err != nil {
		t.Fatal(err)
	}
	roleOf := map[string]string{} // role logical id -> function name
	for id, r := range tmpl.Resources {
		if r.Type == "AWS::Lambda::Function" {
			role := r.Properties["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
			roleOf[role] = strings.TrimSuffix(hash.ReplaceAllString(id, ""), "Function")
		}
	}
	out := map[string][]string{}
	for _, r := range tmpl.Resources {
		if r.Type != "AWS::IAM::Policy" {
			continue
		}
		for _, role := range r.Properties["Roles"].([]any) {
			fn, ok := roleOf[role.(map[string]any)["Ref"].(string)]
			if !ok {
				continue
			}
			doc := r.Properties["PolicyDocument"].(map[string]any)
			for _, st := range doc["Statement"].([]any) {
				st := st.(map[string]any)
				actions, ok := st["Action"].([]any)
				if !ok {
					actions = []any{st["Action"]}
				}
				resources, ok := st["Resource"].([]any)
				if !ok {
					resources = []any{st["Resource"]}
				}
				cond := ""
				if c, ok := st["Condition"]; ok {
					b, _ := json.Marshal(c)
					cond = " if " + string(b)
				}
				for _, a := range actions {
					for _, res := range resources {
						out[fn] = append(out[fn], fmt.Sprintf("%s %s%s", a, render(res), cond))
					}
				}
			}
		}
	}
	for fn := range out {
		slices.Sort(out[fn])
	}
	return out
}

// TestFunctionGrants pins each function's permissions: the actions its code calls, on the
// table, the index where it queries it, and the bucket prefixes it owns. A grant added or
// widened shows up here as a diff to review.
func TestFunctionGrants(t *testing.T) {
	_, tmpl := synth(t, nil)
	got := grants(t, cdktest.JSON(t, tmpl))
	table, index := "DataTable.Arn", "DataTable.Arn/index/GSI1"
	bucket := "StorageBucket.Arn"
	objects := func(prefix string) string { return bucket + "/" + prefix + "*" }
	list := func(prefix string) string {
		return "s3:ListBucket " + bucket + ` if {"StringLike":{"s3:prefix":["` + prefix + `*"]}}`
	}
	logs := func(fn string) []string {
		return []string{
			"logs:CreateLogStream " + fn + "FunctionLogs.Arn",
			"logs:PutLogEvents " + fn + "FunctionLogs.Arn",
		}
	}
	consume := func(queue string) []string {
		var s []string
		for _, a := range []string{"ChangeMessageVisibility", "DeleteMessage", "GetQueueAttributes", "GetQueueUrl", "ReceiveMessage"} {
			s = append(s, "sqs:"+a+" "+queue+".Arn")
		}
		return s
	}
	on := func(res string, actions ...string) []string {
		var s []string
		for _, a := range actions {
			s = append(s, a+" "+res)
		}
		return s
	}
	want := map[string][]string{
		"Api": slices.Concat(logs("Api"),
			on(table, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"),
			on(objects("uploads/"), "s3:PutObject"),
			on(objects("updates/"), "s3:GetObject"),
		),
		"Ingest": slices.Concat(logs("Ingest"), consume("IngestQueue"),
			on(table, "dynamodb:BatchWriteItem", "dynamodb:GetItem", "dynamodb:UpdateItem"),
			on(objects("uploads/"), "s3:DeleteObject", "s3:GetObject"),
			on(objects("quarantine/"), "s3:PutObject", "s3:PutObjectTagging"),
			on(objects("files/"), "s3:DeleteObjectTagging", "s3:PutObject", "s3:PutObjectTagging"),
			[]string{list("uploads/")},
			on("AssemblyQueue.Arn", "sqs:SendMessage"),
		),
		"Change": slices.Concat(logs("Change"), consume("ConfigChangesQueue"),
			on(table, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"),
			on(index, "dynamodb:Query"),
			on("AssemblyQueue.Arn", "sqs:SendMessage"),
		),
		"Assemble": slices.Concat(logs("Assemble"), consume("AssemblyQueue"),
			on(table, "dynamodb:BatchGetItem", "dynamodb:UpdateItem"),
			on(index, "dynamodb:Query"),
			on(objects("updates/"), "s3:GetObject", "s3:PutObject"),
			on("AssemblyQueue.Arn", "sqs:SendMessage"),
		),
	}
	for fn, w := range want {
		slices.Sort(w)
		if !slices.Equal(got[fn], w) {
			t.Errorf("%s grants:\n got  %s\n want %s", fn, strings.Join(got[fn], "\n      "), strings.Join(w, "\n      "))
		}
	}
	if len(got) != len(want) {
		t.Errorf("grants for functions %v, want %d functions", keys(got), len(want))
	}
}

func keys(m map[string][]string) []string {
	var k []string
	for name := range m {
		k = append(k, name)
	}
	slices.Sort(k)
	return k
}

// TestRoutes: every route of the satellite API reaches the API function, and nothing else is
// routed.
func TestRoutes(t *testing.T) {
	_, tmpl := synth(t, nil)
	var routes map[string]*map[string]any
	cdktest.Must(t, func() { routes = *tmpl.FindResources(jsii.String("AWS::ApiGatewayV2::Route"), nil) })
	var got []string
	for _, r := range routes {
		got = append(got, (*r)["Properties"].(map[string]any)["RouteKey"].(string))
	}
	slices.Sort(got)
	want := []string{gatewayapi.RouteUpdates, gatewayapi.RoutePing, gatewayapi.RouteUploadStatus, gatewayapi.RoutePresign}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("routes %v, want %v", got, want)
	}
}
