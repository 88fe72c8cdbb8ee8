package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/callerr"
)

// Protocol errors — a request cairn cannot answer at all, as opposed to a tool error the model
// reads — carry a JSON-RPC code clients can act on. A plain Go error would go out with code 0,
// which is no valid code, so every error a handler returns is classified on its way out
// (protocolErrors); handlers that know better say so with the helpers below.

// codeResourceNotFound is MCP's code for a resource that does not exist up to protocol
// 2025-11-25; from 2026-07-28 on (SEP-2164) it is invalid params.
const codeResourceNotFound = -32002

// protocolStateless is protocol 2026-07-28 (stateless MCP): from it on a missing resource is
// invalid params (SEP-2164), and subscriptions/listen replaces resources/subscribe (SEP-2575).
const protocolStateless = "2026-07-28"

// resourceNotFound is the protocol error for a URI that names no resource, with the code the
// request's protocol version expects and the URI in its data; why, if not empty, says more.
func resourceNotFound(req sdk.Request, uri, why string) error {
	code := int64(codeResourceNotFound)
	if v, ok := req.(interface{ ProtocolVersion() string }); ok && v.ProtocolVersion() >= protocolStateless {
		code = jsonrpc.CodeInvalidParams
	}
	data, _ := json.Marshal(map[string]string{"uri": uri})
	msg := "resource not found: " + uri
	if why != "" {
		msg += ": " + why
	}
	return &jsonrpc.Error{Code: code, Message: msg, Data: data}
}

// invalidParams is the protocol error for a request whose parameters cannot be served.
func invalidParams(format string, args ...any) error {
	return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf(format, args...)}
}

// methodNotFound is the protocol error for a method this server (or this transport) does not
// offer. The SDK's JSON-RPC layer sends every -32601 with its own message ("method not found:
// <method>"), so msg reaches only the log.
func methodNotFound(format string, args ...any) error {
	return &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: fmt.Sprintf(format, args...)}
}

// protocolErrors gives every error a request ends with a JSON-RPC code: errors that already
// have one keep it, errors the caller can fix (a bad URI, a denied permission) are invalid
// params, and the rest — the database or cairn failed — are internal errors, logged here.
func protocolErrors(log *slog.Logger) sdk.Middleware {
	return func(next sdk.MethodHandler) sdk.MethodHandler {
		return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
			res, err := next(ctx, method, req)
			if err == nil {
				return res, nil
			}
			var rpcErr *jsonrpc.Error
			switch {
			case errors.As(err, &rpcErr):
				if r, ok := req.(*sdk.ReadResourceRequest); ok && r.Params != nil && sdkNotFound(rpcErr, r.Params.URI) {
					// A URI that matches no resource or template: the SDK's answer, with the
					// code of cairn's own.
					return res, resourceNotFound(req, r.Params.URI, "")
				}
				if rpcErr.Code != 0 {
					return res, err
				}
				return res, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: err.Error(), Data: rpcErr.Data}
			case callerr.Is(err):
				return res, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: err.Error()}
			}
			log.Log(ctx, slog.LevelWarn, "request failed", "method", method, "err", err)
			return res, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: err.Error()}
		}
	}
}

// sdkNotFound reports whether e is the SDK's ResourceNotFoundError for uri.
func sdkNotFound(e *jsonrpc.Error, uri string) bool {
	var data struct {
		URI string `json:"uri"`
	}
	return e.Code == jsonrpc.CodeInvalidParams && json.Unmarshal(e.Data, &data) == nil && data.URI == uri
}
