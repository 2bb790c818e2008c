package status_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/entrypoint/entrypoint/status"
	"github.com/entrypoint/entrypoint/status/statustest"
)

func TestDo(t *testing.T) {
	ctx := context.Background()
	f := statustest.New(statustest.Running("web", 1), statustest.Running("api", 5))

	rs, err := status.Do(ctx, f, "reload", "web")
	if err != nil || len(rs) != 1 || rs[0].From != 1 || rs[0].To != 2 {
		t.Fatalf("reload web = %+v, %v", rs, err)
	}
	if rs, err := status.Do(ctx, f, "restart", ""); err != nil || len(rs) != 2 {
		t.Fatalf("restart = %+v, %v", rs, err)
	}

	_, err = status.Do(ctx, f, "reload", "nope")
	var ua *status.UnknownAppError
	if !errors.As(err, &ua) || ua.App != "nope" || err.Error() != `unknown app "nope"; apps: web, api` {
		t.Errorf("reload nope = %v, want an UnknownAppError listing the apps", err)
	}
	_, err = status.Do(ctx, f, "dance", "")
	var uc *status.UnknownActionError
	if !errors.As(err, &uc) || uc.Action != "dance" {
		t.Errorf("dance = %v, want an UnknownActionError", err)
	}

	f.Tune(func(k *statustest.Knobs) { k.Rollback = "gate timed out" })
	rs, err = status.Do(ctx, f, "reload", "")
	var fe *status.FailedError
	if !errors.As(err, &fe) || len(rs) != 2 || err.Error() != "reload web: gate timed out; reload api: gate timed out" {
		t.Errorf("rolled-back reload = %+v, %v", rs, err)
	}

	boom := errors.New("supervisor is shutting down")
	f.Tune(func(k *statustest.Knobs) { k.Err = boom })
	if _, err := status.Do(ctx, f, "restart", "api"); err != boom {
		t.Errorf("restart while shutting down = %v, want the supervisor's error unchanged", err)
	}

	// Nothing unknown reached the supervisor.
	want := []string{"reload web", "restart ", "reload ", "restart api"}
	if got := f.Calls(); !slices.Equal(got, want) {
		t.Errorf("supervisor saw %q, want %q", got, want)
	}
}
