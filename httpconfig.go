package waymark

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// HTTPConfig configures the outgoing calls of http activities.
type HTTPConfig struct {
	// Transport sends the requests. Defaults to a transport like
	// http.DefaultTransport (TLS certificates verified) whose dialer
	// refuses the addresses AllowPrivate does not allow, so that a host
	// name resolving to one is refused too.
	Transport http.RoundTripper
	// AllowHosts, when not empty, lists the only hosts calls may go to:
	// exact names ("api.example.com") or suffixes ("*.example.com").
	AllowHosts []string
	// AllowPrivate allows calls to loopback, link-local, private and
	// unspecified addresses. Defaults to false: a URL built from input
	// cannot reach this machine, its cloud metadata service or the
	// internal network. `waymark dev` sets it.
	AllowPrivate bool
	// Timeout bounds an attempt of an http activity that sets no timeout
	// of its own. Defaults to 30s.
	Timeout time.Duration
	// MaxResponseBytes bounds a response body; a larger one fails the
	// attempt permanently. Defaults to 1 MiB.
	MaxResponseBytes int64
	// PerTarget bounds the calls in flight from this engine to one host.
	// Defaults to 32.
	PerTarget int
}

func (c HTTPConfig) withDefaults() HTTPConfig {
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = 1 << 20
	}
	if c.PerTarget == 0 {
		c.PerTarget = 32
	}
	return c
}

func (c HTTPConfig) validate() error {
	switch {
	case c.Timeout < time.Millisecond:
		return fmt.Errorf("%w: Config.HTTP.Timeout %s: must be at least 1ms", ErrInvalid, c.Timeout)
	case c.MaxResponseBytes < 1:
		return fmt.Errorf("%w: Config.HTTP.MaxResponseBytes %d: must be positive", ErrInvalid, c.MaxResponseBytes)
	case c.PerTarget < 1:
		return fmt.Errorf("%w: Config.HTTP.PerTarget %d: must be positive", ErrInvalid, c.PerTarget)
	}
	for _, h := range c.AllowHosts {
		if strings.TrimPrefix(h, "*.") == "" || strings.Contains(strings.TrimPrefix(h, "*."), "*") {
			return fmt.Errorf("%w: Config.HTTP.AllowHosts: %q is not a host or *.suffix", ErrInvalid, h)
		}
	}
	return nil
}

// BreakerConfig configures the named circuit breakers. Their state lives
// in the database, shared by every engine on it.
type BreakerConfig struct {
	// Failures is how many failed calls in a row (transient, timeout or
	// unknown outcome) open a breaker. Defaults to 5.
	Failures int
	// OpenFor is how long an open breaker holds calls before it lets one
	// probe through (half-open). Defaults to 30s.
	OpenFor time.Duration
}

func (c BreakerConfig) withDefaults() BreakerConfig {
	if c.Failures == 0 {
		c.Failures = 5
	}
	if c.OpenFor == 0 {
		c.OpenFor = 30 * time.Second
	}
	return c
}

func (c BreakerConfig) validate() error {
	switch {
	case c.Failures < 1:
		return fmt.Errorf("%w: Config.Breakers.Failures %d: must be positive", ErrInvalid, c.Failures)
	case c.OpenFor < time.Millisecond:
		return fmt.Errorf("%w: Config.Breakers.OpenFor %s: must be at least 1ms", ErrInvalid, c.OpenFor)
	}
	return nil
}

// hostAllowed reports whether a call may go to host (no port) under c.
func (c *HTTPConfig) hostAllowed(host string) error {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if len(c.AllowHosts) > 0 {
		ok := false
		for _, h := range c.AllowHosts {
			h = strings.ToLower(h)
			if suffix, wild := strings.CutPrefix(h, "*."); wild {
				ok = ok || strings.HasSuffix(host, "."+suffix)
			} else {
				ok = ok || host == h
			}
		}
		if !ok {
			return fmt.Errorf("host %q is not in Config.HTTP.AllowHosts", host)
		}
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return c.addrAllowed(ip)
	}
	if !c.AllowPrivate && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
		return fmt.Errorf("host %q is loopback; set Config.HTTP.AllowPrivate to call it", host)
	}
	return nil
}

// addrAllowed reports whether a call may connect to ip.
func (c *HTTPConfig) addrAllowed(ip netip.Addr) error {
	ip = ip.Unmap()
	if c.AllowPrivate {
		return nil
	}
	if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsPrivate() ||
		ip.IsUnspecified() || ip.IsInterfaceLocalMulticast() {
		return fmt.Errorf("address %s is loopback, link-local or private; set Config.HTTP.AllowPrivate to call it", ip)
	}
	return nil
}
