package mcp

import (
	"context"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// One go-sdk server serves every transport, and the SDK derives its capabilities from the
// server alone; but what a session can be sent depends on its transport. cairn's Streamable
// HTTP endpoint is stateless: a session lasts one POST, so up to protocol 2025-11-25 a
// resources/subscribe there could never be followed by a notification. Such a session is not
// told that subscriptions exist. From 2026-07-28 on, subscriptions/listen keeps its own stream
// open on any transport, so the capability holds there too.

// overStatelessHTTP reports whether a request came over cairn's Streamable HTTP endpoint, the
// only transport whose requests carry HTTP headers (SSE's and stdio's carry none).
func overStatelessHTTP(req sdk.Request) bool {
	ex := req.GetExtra()
	return ex != nil && ex.Header != nil
}

// truthfulCapabilities takes resources.subscribe out of an initialize result sent over
// stateless HTTP.
func truthfulCapabilities(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		res, err := next(ctx, method, req)
		init, ok := res.(*sdk.InitializeResult)
		if !ok || err != nil || !overStatelessHTTP(req) {
			return res, err
		}
		if c := init.Capabilities; c != nil && c.Resources != nil && c.Resources.Subscribe && init.ProtocolVersion < protocolStateless {
			caps := *c
			rc := *c.Resources
			rc.Subscribe = false
			caps.Resources = &rc
			init.Capabilities = &caps
		}
		return res, nil
	}
}
