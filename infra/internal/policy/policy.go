// Package policy checks synthesized CloudFormation templates against the project's rules for
// every resource of a type, whichever construct made it. It stands in for cdk-nag, which has no
// Go module that resolves here, and works on the template JSON so that it can check both a stack
// in a test and the files in cdk.out.
//
// Most rules are a function over one resource (the rules table); a few need to see several
// resources at once, such as a queue and the policies that name it (the templateRules table). Add
// rules as resource types join the backend.
package policy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Finding is one rule broken by one resource.
type Finding struct {
	LogicalID string // the resource's logical id in the template
	Type      string // its CloudFormation type
	Rule      string // the rule's name, stable for grepping and for future suppressions
	Detail    string // what is wrong, for a person
}

// String formats f for a test failure or a report line.
func (f Finding) String() string {
	return fmt.Sprintf("%s (%s): %s: %s", f.LogicalID, f.Type, f.Rule, f.Detail)
}

// resource is a template resource as the rules see it: Properties stay raw so each rule decodes
// only the fields it checks.
type resource struct {
	Type       string          `json:"Type"`
	Properties json.RawMessage `json:"Properties"`
}

// rule checks resources of one CloudFormation type and returns what is wrong ("" when nothing).
type rule struct {
	name  string
	typ   string
	check func(r resource) (string, error)
}

// rules is a fixed table, not a variable for tests to swap: the tests feed templates instead.
var rules = []rule{
	{name: "s3-bucket-encryption", typ: "AWS::S3::Bucket", check: bucketEncrypted},
	{name: "s3-bucket-public-access-block", typ: "AWS::S3::Bucket", check: bucketBlocksPublicAccess},
	{name: "no-physical-name", typ: "AWS::S3::Bucket", check: unnamed("BucketName")},
	{name: "no-physical-name", typ: "AWS::SQS::Queue", check: unnamed("QueueName")},
	{name: "no-physical-name", typ: "AWS::DynamoDB::Table", check: unnamed("TableName")},
	{name: "no-physical-name", typ: "AWS::SNS::Topic", check: unnamed("TopicName")},
	{name: "sqs-queue-encryption", typ: "AWS::SQS::Queue", check: queueEncrypted},
	{name: "dynamodb-point-in-time-recovery", typ: "AWS::DynamoDB::Table", check: tableRecoverable},
	{name: "iam-no-wildcard", typ: "AWS::IAM::Policy", check: noWildcards},
	{name: "iam-no-wildcard", typ: "AWS::IAM::ManagedPolicy", check: noWildcards},
	{name: "iam-no-wildcard", typ: "AWS::IAM::Role", check: noWildcards},
}

// templateRule checks relations between resources and returns one finding per offender.
type templateRule struct {
	name  string
	check func(resources map[string]resource) ([]Finding, error)
}

var templateRules = []templateRule{
	{name: "sqs-dead-letter-queue", check: queuesHaveDeadLetters},
	{name: "sqs-enforce-ssl", check: secureTransport("AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "Queues")},
	{name: "sns-enforce-ssl", check: secureTransport("AWS::SNS::Topic", "AWS::SNS::TopicPolicy", "Topics")},
	{name: "lambda-errors-alarm", check: functionsAlarmed},
	{name: "sqs-consumer", check: queueConsumers},
	{name: "api-mtls-bypass", check: mtlsNotBypassable},
}

// cdkProvider matches the logical ids of the custom-resource handlers CDK adds itself (the
// bucket's auto-delete in dev). They run only during a deployment, whose failure shows their
// errors, and their code is not ours to alarm on.
var cdkProvider = regexp.MustCompile(`CustomResourceProvider`)

// Check applies the rules to every resource of template (CloudFormation JSON) and returns the
// findings, ordered by logical id then rule, so that reports are stable.
func Check(template []byte) ([]Finding, error) {
	var t struct {
		Resources map[string]resource `json:"Resources"`
	}
	if err := json.Unmarshal(template, &t); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	var findings []Finding
	for id, r := range t.Resources {
		for _, ru := range rules {
			if ru.typ != r.Type {
				continue
			}
			detail, err := ru.check(r)
			if err != nil {
				return nil, fmt.Errorf("%s: rule %s: %w", id, ru.name, err)
			}
			if detail != "" {
				findings = append(findings, Finding{LogicalID: id, Type: r.Type, Rule: ru.name, Detail: detail})
			}
		}
	}
	for _, tr := range templateRules {
		fs, err := tr.check(t.Resources)
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", tr.name, err)
		}
		for i := range fs {
			fs[i].Rule = tr.name
		}
		findings = append(findings, fs...)
	}
	slices.SortFunc(findings, func(a, b Finding) int {
		return strings.Compare(a.LogicalID+"\x00"+a.Rule, b.LogicalID+"\x00"+b.Rule)
	})
	return findings, nil
}

// decode reads r's properties into v; a resource without Properties leaves v zero, which the
// rules treat as "setting missing".
func decode(r resource, v any) error {
	if len(r.Properties) == 0 {
		return nil
	}
	return json.Unmarshal(r.Properties, v)
}

func bucketEncrypted(r resource) (string, error) {
	var p struct {
		BucketEncryption struct {
			ServerSideEncryptionConfiguration []struct {
				ServerSideEncryptionByDefault struct {
					SSEAlgorithm string
				}
			}
		}
	}
	if err := decode(r, &p); err != nil {
		return "", err
	}
	// S3 now encrypts by default; the rule still wants it in the template, so that the choice is
	// reviewed and a later switch (to KMS) is a visible diff.
	for _, c := range p.BucketEncryption.ServerSideEncryptionConfiguration {
		if c.ServerSideEncryptionByDefault.SSEAlgorithm != "" {
			return "", nil
		}
	}
	return "no default server-side encryption (BucketEncryption)", nil
}

func bucketBlocksPublicAccess(r resource) (string, error) {
	// Pointers, because a setting left out is as bad as one set to false.
	var p struct {
		PublicAccessBlockConfiguration *struct {
			BlockPublicAcls       *bool
			BlockPublicPolicy     *bool
			IgnorePublicAcls      *bool
			RestrictPublicBuckets *bool
		}
	}
	if err := decode(r, &p); err != nil {
		return "", err
	}
	c := p.PublicAccessBlockConfiguration
	if c == nil {
		return "no PublicAccessBlockConfiguration", nil
	}
	var off []string
	for name, v := range map[string]*bool{
		"BlockPublicAcls":       c.BlockPublicAcls,
		"BlockPublicPolicy":     c.BlockPublicPolicy,
		"IgnorePublicAcls":      c.IgnorePublicAcls,
		"RestrictPublicBuckets": c.RestrictPublicBuckets,
	} {
		if v == nil || !*v {
			off = append(off, name)
		}
	}
	if len(off) > 0 {
		slices.Sort(off)
		return "public access block not fully on: " + strings.Join(off, ", "), nil
	}
	return "", nil
}

// unnamed returns a check that the resource does not set field, its physical name. Names are
// account- or globally-unique: a fixed one blocks a second stage in the same account and makes any
// replacement fail. CloudFormation generates one, and outputs pass it on.
func unnamed(field string) func(r resource) (string, error) {
	return func(r resource) (string, error) {
		var p map[string]json.RawMessage
		if err := decode(r, &p); err != nil {
			return "", err
		}
		if v, ok := p[field]; ok {
			return "hard-coded " + field + " " + string(v), nil
		}
		return "", nil
	}
}

func queueEncrypted(r resource) (string, error) {
	var p struct {
		SqsManagedSseEnabled *bool
		KmsMasterKeyID       json.RawMessage `json:"KmsMasterKeyId"`
	}
	if err := decode(r, &p); err != nil {
		return "", err
	}
	// SQS now encrypts new queues by default; as for buckets, the rule wants the choice written.
	if (p.SqsManagedSseEnabled != nil && *p.SqsManagedSseEnabled) || len(p.KmsMasterKeyID) > 0 {
		return "", nil
	}
	return "no encryption at rest (SqsManagedSseEnabled or KmsMasterKeyId)", nil
}

func tableRecoverable(r resource) (string, error) {
	var p struct {
		PointInTimeRecoverySpecification struct {
			PointInTimeRecoveryEnabled bool
		}
	}
	if err := decode(r, &p); err != nil {
		return "", err
	}
	if !p.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled {
		return "point-in-time recovery off", nil
	}
	return "", nil
}

// statement is an IAM policy statement, as the rules read it (identity policies and resource
// policies alike); Action and Resource may be a string or a list, and a Resource may also be an
// intrinsic function (a Ref or Fn::Join), which is never a bare "*".
type statement struct {
	Effect    string
	Action    json.RawMessage
	Resource  json.RawMessage
	Condition struct {
		Bool map[string]json.RawMessage
	}
}

type document struct {
	Statement json.RawMessage // one statement or a list
}

func (d document) statements() ([]statement, error) {
	if len(d.Statement) == 0 {
		return nil, nil
	}
	var list []statement
	if d.Statement[0] == '[' {
		return list, json.Unmarshal(d.Statement, &list)
	}
	var one statement
	err := json.Unmarshal(d.Statement, &one)
	return []statement{one}, err
}

// plainStrings returns the plain strings in a string-or-list value; intrinsic functions are skipped.
func plainStrings(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		return nil
	}
	var out []string
	for _, e := range list {
		if json.Unmarshal(e, &one) == nil {
			out = append(out, one)
		}
	}
	return out
}

// noWildcards finds Allow statements that grant an action pattern ("s3:*", "s3:Get*", "*") or
// any resource ("*"). Least privilege here means named actions on named resources; a resource may
// still end in /* to cover a key prefix the function owns (uploads/*), which is not a bare "*".
func noWildcards(r resource) (string, error) {
	var p struct {
		PolicyDocument document
		Policies       []struct{ PolicyDocument document }
	}
	if err := decode(r, &p); err != nil {
		return "", err
	}
	docs := []document{p.PolicyDocument}
	for _, inline := range p.Policies {
		docs = append(docs, inline.PolicyDocument)
	}
	var bad []string
	for _, d := range docs {
		stmts, err := d.statements()
		if err != nil {
			return "", err
		}
		for _, st := range stmts {
			if st.Effect != "Allow" {
				continue
			}
			for _, a := range plainStrings(st.Action) {
				if strings.Contains(a, "*") {
					bad = append(bad, "action "+a)
				}
			}
			for _, res := range plainStrings(st.Resource) {
				if res == "*" {
					bad = append(bad, "resource *")
				}
			}
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return "wildcard in an Allow: " + strings.Join(slices.Compact(bad), ", "), nil
	}
	return "", nil
}

// refTo returns the logical id a {"Ref": id} or {"Fn::GetAtt": [id, attr]} value points to.
func refTo(raw json.RawMessage) string {
	var v struct {
		Ref    string            `json:"Ref"`
		GetAtt []json.RawMessage `json:"Fn::GetAtt"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	if v.Ref != "" {
		return v.Ref
	}
	if len(v.GetAtt) > 0 {
		var id string
		if json.Unmarshal(v.GetAtt[0], &id) == nil {
			return id
		}
	}
	return ""
}

// queuesHaveDeadLetters finds queues that neither redrive to a dead-letter queue nor are one: a
// message that always fails would otherwise be retried until its retention runs out, blocking
// nothing but hiding the failure.
func queuesHaveDeadLetters(res map[string]resource) ([]Finding, error) {
	redrives := map[string]bool{}
	targets := map[string]bool{}
	for id, r := range res {
		if r.Type != "AWS::SQS::Queue" {
			continue
		}
		var p struct {
			RedrivePolicy *struct {
				DeadLetterTargetArn json.RawMessage `json:"deadLetterTargetArn"`
			}
		}
		if err := decode(r, &p); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		if p.RedrivePolicy != nil && len(p.RedrivePolicy.DeadLetterTargetArn) > 0 {
			redrives[id] = true
			if t := refTo(p.RedrivePolicy.DeadLetterTargetArn); t != "" {
				targets[t] = true
			}
		}
	}
	var out []Finding
	for id, r := range res {
		if r.Type == "AWS::SQS::Queue" && !redrives[id] && !targets[id] {
			out = append(out, Finding{LogicalID: id, Type: r.Type,
				Detail: "no RedrivePolicy, and no other queue uses it as its dead-letter queue"})
		}
	}
	return out, nil
}

// secureTransport returns a check that every resource of typ is named (by Ref) in the listField
// of a policy of policyType that denies requests without TLS (aws:SecureTransport false).
func secureTransport(typ, policyType, listField string) func(map[string]resource) ([]Finding, error) {
	return func(res map[string]resource) ([]Finding, error) {
		covered := map[string]bool{}
		for id, r := range res {
			if r.Type != policyType {
				continue
			}
			var p map[string]json.RawMessage
			if err := decode(r, &p); err != nil {
				return nil, fmt.Errorf("%s: %w", id, err)
			}
			var doc document
			if raw := p["PolicyDocument"]; len(raw) > 0 {
				if err := json.Unmarshal(raw, &doc); err != nil {
					return nil, fmt.Errorf("%s: PolicyDocument: %w", id, err)
				}
			}
			stmts, err := doc.statements()
			if err != nil {
				return nil, fmt.Errorf("%s: PolicyDocument: %w", id, err)
			}
			denies := false
			for _, st := range stmts {
				if v := st.Condition.Bool["aws:SecureTransport"]; st.Effect == "Deny" &&
					(string(v) == `"false"` || string(v) == "false") {
					denies = true
				}
			}
			if !denies {
				continue
			}
			var targets []json.RawMessage
			if raw := p[listField]; len(raw) > 0 {
				if err := json.Unmarshal(raw, &targets); err != nil {
					return nil, fmt.Errorf("%s: %s: %w", id, listField, err)
				}
			}
			for _, t := range targets {
				covered[refTo(t)] = true
			}
		}
		var out []Finding
		for id, r := range res {
			if r.Type == typ && !covered[id] {
				out = append(out, Finding{LogicalID: id, Type: r.Type,
					Detail: "no " + policyType + " denies requests without TLS (aws:SecureTransport false)"})
			}
		}
		return out, nil
	}
}

// functionsAlarmed finds functions without an alarm on their Errors metric: a function that
// fails silently leaves its queue to fill or its API to answer 5xx with nobody told.
func functionsAlarmed(res map[string]resource) ([]Finding, error) {
	alarmed := map[string]bool{}
	for id, r := range res {
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		var p struct {
			MetricName string
			Namespace  string
			Dimensions []struct {
				Name  string
				Value json.RawMessage
			}
		}
		if err := decode(r, &p); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		if p.Namespace != "AWS/Lambda" || p.MetricName != "Errors" {
			continue
		}
		for _, d := range p.Dimensions {
			if d.Name == "FunctionName" {
				alarmed[refTo(d.Value)] = true
			}
		}
	}
	var out []Finding
	for id, r := range res {
		if r.Type == "AWS::Lambda::Function" && !alarmed[id] && !cdkProvider.MatchString(id) {
			out = append(out, Finding{LogicalID: id, Type: r.Type, Detail: "no alarm on its Errors metric"})
		}
	}
	return out, nil
}

// queueConsumers checks every SQS event source mapping: the function reports partial batch
// failures (else one bad message fails, and retries, its whole batch), and the queue's visibility
// timeout is at least 6x the function's timeout (else a message reappears while a throttled or
// retried invocation still holds it, and is processed twice at once).
func queueConsumers(res map[string]resource) ([]Finding, error) {
	var out []Finding
	for id, r := range res {
		if r.Type != "AWS::Lambda::EventSourceMapping" {
			continue
		}
		var m struct {
			EventSourceArn        json.RawMessage
			FunctionName          json.RawMessage
			FunctionResponseTypes []string
		}
		if err := decode(r, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		queue, ok := res[refTo(m.EventSourceArn)]
		if !ok || queue.Type != "AWS::SQS::Queue" {
			continue // not a queue of this template
		}
		if !slices.Contains(m.FunctionResponseTypes, "ReportBatchItemFailures") {
			out = append(out, Finding{LogicalID: id, Type: r.Type,
				Detail: "does not report partial batch failures (FunctionResponseTypes ReportBatchItemFailures)"})
		}
		var q struct{ VisibilityTimeout *float64 }
		if err := decode(queue, &q); err != nil {
			return nil, fmt.Errorf("%s: %w", refTo(m.EventSourceArn), err)
		}
		var f struct{ Timeout *float64 }
		if fn, ok := res[refTo(m.FunctionName)]; ok {
			if err := decode(fn, &f); err != nil {
				return nil, fmt.Errorf("%s: %w", refTo(m.FunctionName), err)
			}
		}
		visibility, timeout := 30.0, 3.0 // the SQS and Lambda defaults
		if q.VisibilityTimeout != nil {
			visibility = *q.VisibilityTimeout
		}
		if f.Timeout != nil {
			timeout = *f.Timeout
		}
		if visibility < 6*timeout {
			out = append(out, Finding{LogicalID: id, Type: r.Type, Detail: fmt.Sprintf(
				"queue visibility timeout %gs is under 6x the function timeout %gs", visibility, timeout)})
		}
	}
	return out, nil
}

// mtlsNotBypassable finds HTTP APIs that keep their execute-api endpoint while the template has a
// custom domain with mutual TLS: that endpoint asks for no client certificate, so it would let
// any caller around the check.
func mtlsNotBypassable(res map[string]resource) ([]Finding, error) {
	mtls := false
	for id, r := range res {
		if r.Type != "AWS::ApiGatewayV2::DomainName" {
			continue
		}
		var p struct {
			MutualTLSAuthentication json.RawMessage `json:"MutualTlsAuthentication"`
		}
		if err := decode(r, &p); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		mtls = mtls || len(p.MutualTLSAuthentication) > 0
	}
	if !mtls {
		return nil, nil
	}
	var out []Finding
	for id, r := range res {
		if r.Type != "AWS::ApiGatewayV2::Api" {
			continue
		}
		var p struct {
			DisableExecuteAPIEndpoint bool `json:"DisableExecuteApiEndpoint"`
		}
		if err := decode(r, &p); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		if !p.DisableExecuteAPIEndpoint {
			out = append(out, Finding{LogicalID: id, Type: r.Type,
				Detail: "execute-api endpoint enabled beside an mTLS domain: it bypasses the client-certificate check"})
		}
	}
	return out, nil
}
