package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// lifecycle is the components Start brought up, in order. Each component
// is added the moment it is running, with what stops it; close stops them
// in reverse. Start closes the lifecycle when a later component fails, so
// a failed start leaves nothing running (no spool lock, no goroutine, no
// bound port), and Stop closes the same list: one order for both.
type lifecycle struct {
	log   *slog.Logger
	steps []component
}

type component struct {
	name string
	stop func(ctx context.Context) error
}

// add records a running component and how to stop it.
func (l *lifecycle) add(name string, stop func(ctx context.Context) error) {
	l.steps = append(l.steps, component{name: name, stop: stop})
}

// close stops every component, last added first, each once; it keeps
// going past failures and returns them joined, each named.
func (l *lifecycle) close(ctx context.Context) error {
	var errs []error
	for i := len(l.steps) - 1; i >= 0; i-- {
		c := l.steps[i]
		if err := c.stop(ctx); err != nil {
			err = fmt.Errorf("stopping %s: %w", c.name, err)
			if l.log != nil {
				l.log.Error("shutdown", "component", c.name, "error", err)
			}
			errs = append(errs, err)
		}
	}
	l.steps = nil
	return errors.Join(errs...)
}

// names lists the running components in start order.
func (l *lifecycle) names() []string {
	out := make([]string, len(l.steps))
	for i, c := range l.steps {
		out[i] = c.name
	}
	return out
}
