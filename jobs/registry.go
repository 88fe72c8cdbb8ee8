package jobs

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/riverqueue/river"
)

// Registry collects the job workers and periodic jobs of cairn's domain packages. main builds
// one, each domain package adds its own, and Start runs them; a registry may start several
// clients, and what is added after a Start does not reach that client.
type Registry struct {
	// check catches a duplicate kind when it is added rather than at Start.
	check    *river.Workers
	adds     []func(*river.Workers) error
	kinds    []string
	periodic []*river.PeriodicJob
	// queues are the queues of their own that domain workers asked for, with their sizes.
	queues map[string]river.QueueConfig
	// longest is the longest timeout a worker declared (AddTimeout), for River's rescuer.
	longest time.Duration
	// atStart are jobs every process queues when its client starts (AddStartJob).
	atStart []river.JobArgs
}

// AddStartJob has every process queue args when its client starts. Periodic jobs with
// RunOnStart run on the elected leader only, and a process that takes over from one that died
// may wait many seconds for the dead leader's term to end; work that must not wait for that
// (picking up what the dead process left) is queued here too.
func (r *Registry) AddStartJob(args river.JobArgs) {
	r.atStart = append(r.atStart, args)
}

// AddTimeout declares that some job may run for up to d: River takes a job running longer than
// the longest of these plus a minute (and never less than RescueStuckJobsAfter) for one whose
// process died, and retries it.
func (r *Registry) AddTimeout(d time.Duration) {
	r.longest = max(r.longest, d)
}

// rescueAfter is when River's rescuer retries a job that has run too long.
func (r *Registry) rescueAfter() time.Duration {
	return max(RescueStuckJobsAfter, r.longest+time.Minute)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{check: river.NewWorkers()}
}

// AddWorker registers w to work the jobs whose arguments are a T. It is a function rather than
// a method because Go methods cannot take type parameters. A second worker for a kind is an error.
func AddWorker[T river.JobArgs](r *Registry, w river.Worker[T]) error {
	if err := river.AddWorkerSafely(r.check, w); err != nil {
		return fmt.Errorf("register job worker: %w", err)
	}
	var args T
	r.kinds = append(r.kinds, args.Kind())
	r.adds = append(r.adds, func(ws *river.Workers) error { return river.AddWorkerSafely(ws, w) })
	return nil
}

// AddPeriodic has the leader among the running clients queue the job construct returns every
// interval. Its kind needs a worker; opts may be nil (set RunOnStart to run it at start too).
func (r *Registry) AddPeriodic(interval time.Duration, construct river.PeriodicJobConstructor, opts *river.PeriodicJobOpts) error {
	if interval <= 0 {
		return fmt.Errorf("periodic job: interval %s must be positive", interval)
	}
	if construct == nil {
		return errors.New("periodic job: no constructor")
	}
	r.periodic = append(r.periodic, river.NewPeriodicJob(river.PeriodicInterval(interval), construct, opts))
	return nil
}

// AddQueue has the clients work a queue of its own, at most maxWorkers of its jobs at once, beside
// the default queue (whose size is Options.Queues'). A domain uses one when its jobs must not run
// many at a time, or must not wait behind others.
func (r *Registry) AddQueue(name string, maxWorkers int) error {
	if name == "" || name == river.QueueDefault {
		return fmt.Errorf("queue %q: name a queue of its own", name)
	}
	if maxWorkers < 1 || maxWorkers > river.QueueNumWorkersMax {
		return fmt.Errorf("queue %s: %d workers; use 1 to %d", name, maxWorkers, river.QueueNumWorkersMax)
	}
	if r.queues == nil {
		r.queues = map[string]river.QueueConfig{}
	}
	r.queues[name] = river.QueueConfig{MaxWorkers: maxWorkers}
	return nil
}

// Kinds returns the job kinds that have a worker, sorted.
func (r *Registry) Kinds() []string {
	ks := slices.Clone(r.kinds)
	slices.Sort(ks)
	return ks
}

// NumPeriodic returns how many periodic jobs are registered.
func (r *Registry) NumPeriodic() int { return len(r.periodic) }

// workers builds a fresh River worker bundle, so a running client shares no mutable state with
// the registry.
func (r *Registry) workers() (*river.Workers, error) {
	ws := river.NewWorkers()
	for _, add := range r.adds {
		if err := add(ws); err != nil {
			return nil, fmt.Errorf("register job worker: %w", err)
		}
	}
	return ws, nil
}
