package fakegateway

import (
	"context"
	"net/http"
)

func contextWith(r *http.Request, satellite string) context.Context {
	return context.WithValue(r.Context(), ctxKey{}, satellite)
}

func satelliteOf(r *http.Request) string {
	s, _ := r.Context().Value(ctxKey{}).(string)
	return s
}
