package xds

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/envoyproxy/go-control-plane/pkg/log"
)

// cpLogger adapts slog to go-control-plane's logger. Its Info messages are
// per-watch chatter and go to Debug. Arguments are formatted only when the
// level is enabled: some carry whole subscription maps.
type cpLogger struct{ l *slog.Logger }

var _ log.Logger = cpLogger{}

func (c cpLogger) logf(lvl slog.Level, format string, args []any) {
	if !c.l.Enabled(context.Background(), lvl) {
		return
	}
	c.l.Log(context.Background(), lvl, fmt.Sprintf(format, args...))
}

func (c cpLogger) Debugf(format string, args ...any) { c.logf(slog.LevelDebug, format, args) }
func (c cpLogger) Infof(format string, args ...any)  { c.logf(slog.LevelDebug, format, args) }
func (c cpLogger) Warnf(format string, args ...any)  { c.logf(slog.LevelWarn, format, args) }
func (c cpLogger) Errorf(format string, args ...any) { c.logf(slog.LevelError, format, args) }
