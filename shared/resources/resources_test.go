package resources_test

import (
	"strings"
	"testing"
	"time"

	"github.com/satellite-gateway/gateway/shared/resources"
)

func TestQueuesAreValid(t *testing.T) {
	seen := map[string]bool{}
	for _, q := range resources.Queues() {
		if err := q.Validate(); err != nil {
			t.Error(err)
		}
		if seen[q.Name] {
			t.Errorf("queue name %q used twice", q.Name)
		}
		seen[q.Name] = true
	}
	if len(seen) != 3 {
		t.Errorf("Queues() = %d queues, want ingest, config-changes and assembly", len(seen))
	}
}

func TestValidateRefuses(t *testing.T) {
	tests := []struct {
		name   string
		change func(q *resources.Queue)
		want   string
	}{
		{"no name", func(q *resources.Queue) { q.Name = "" }, "no name"},
		{"visibility below 6x the timeout", func(q *resources.Queue) { q.VisibilityTimeout = 5 * q.ConsumerTimeout }, "visibility timeout"},
		{"timeout beyond Lambda's 15 minutes", func(q *resources.Queue) {
			q.ConsumerTimeout, q.VisibilityTimeout = 16*time.Minute, 2*time.Hour
		}, "consumer timeout"},
		{"no redrive", func(q *resources.Queue) { q.MaxReceiveCount = 0 }, "max receive count"},
		{"retention beyond 14 days", func(q *resources.Queue) { q.Retention = 15 * 24 * time.Hour }, "retention"},
		{"batch over 10", func(q *resources.Queue) { q.BatchSize = 11 }, "batch size"},
		{"fractional window", func(q *resources.Queue) { q.MaxBatchingWindow = 1500 * time.Millisecond }, "whole seconds"},
		{"concurrency below the mapping's floor", func(q *resources.Queue) { q.MaxConcurrency = 1 }, "max concurrency"},
		{"age alarm past retention", func(q *resources.Queue) { q.AgeAlarm = q.Retention }, "age alarm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := resources.ConfigChanges
			tt.change(&q)
			err := q.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error about %q", err, tt.want)
			}
		})
	}
}
