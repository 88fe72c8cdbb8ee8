package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"time"
)

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// serveHTTP starts `cairn serve --transport http` on a free loopback port with args, env added
// to the environment and its log on stderr, and returns its base URL once /readyz answers 200.
// The caller kills the process (stop); on an error it is already gone.
func serveHTTP(ctx context.Context, bin string, env []string, args ...string) (string, *exec.Cmd, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"serve", "--transport", "http", "--addr", addr}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	base := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base, cmd, nil
			}
		}
		if time.Now().After(deadline) {
			stop(cmd)
			return "", nil, fmt.Errorf("cairn serve did not become ready on %s", addr)
		}
	}
}
