// Package policy checks synthesized CloudFormation templates against the project's rules for
// every resource of a type, whichever construct made it. It stands in for cdk-nag, which has no
// Go module that resolves here, and works on the template JSON so that it can check both a stack
// in a test and the files in cdk.out.
//
// Each rule is a function over one resource; add rules to the rules table as resource types join
// the backend (tables, queues, functions).
package policy

import (
	"encoding/json"
	"fmt"
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
	{name: "no-physical-name", typ: "AWS::S3::Bucket", check: bucketUnnamed},
}

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

func bucketUnnamed(r resource) (string, error) {
	var p struct {
		BucketName json.RawMessage
	}
	if err := decode(r, &p); err != nil {
		return "", err
	}
	// Bucket names are global: a fixed one blocks a second stage or account and makes any
	// replacement fail. Let CloudFormation generate it and pass it on through outputs.
	if len(p.BucketName) > 0 {
		return "hard-coded BucketName " + string(p.BucketName), nil
	}
	return "", nil
}
