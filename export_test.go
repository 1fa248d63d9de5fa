package waymark

import "time"

// SetLocalClock makes an engine built from cfg believe this machine's
// clock reads now(): tests play machines whose clocks are off.
func SetLocalClock(cfg *Config, now func() time.Time) { cfg.localClock = now }

// DisablePipelining makes an engine built from cfg commit every step in
// an ordinary transaction, as on a store that cannot pipeline.
func DisablePipelining(cfg *Config) { cfg.noPipeline = true }

// DisableInlineDispatch makes an engine built from cfg claim every task,
// as before tasks were handed straight to the engine that scheduled them.
func DisableInlineDispatch(cfg *Config) { cfg.noInline = true }
