package scale

import (
	"sync"
	"time"
)

// Supervisor keeps one vmop-controller process running, as the kubelet
// does for a container: when the process exits (killed, or stepping down
// after losing its Lease) a new one starts a second later.
type Supervisor struct {
	binary, kubeconfig, logPath string
	args                        []string

	mu       sync.Mutex
	current  *Controller
	starts   int
	stopping bool
	done     chan struct{}
}

// Supervise starts the controller and keeps it running until Stop.
func Supervise(binary, kubeconfig, logPath string, args ...string) (*Supervisor, error) {
	s := &Supervisor{binary: binary, kubeconfig: kubeconfig, logPath: logPath, args: args, done: make(chan struct{})}
	if err := s.start(); err != nil {
		return nil, err
	}
	go s.watch()
	return s, nil
}

func (s *Supervisor) start() error {
	controller, err := StartController(s.binary, s.kubeconfig, s.logPath, s.args...)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.current = controller
	s.starts++
	s.mu.Unlock()
	return nil
}

func (s *Supervisor) watch() {
	defer close(s.done)
	for {
		s.mu.Lock()
		current := s.current
		s.mu.Unlock()
		<-current.exited
		s.mu.Lock()
		stopping := s.stopping
		s.mu.Unlock()
		if stopping {
			return
		}
		time.Sleep(time.Second)
		for s.start() != nil {
			time.Sleep(time.Second)
		}
	}
}

// Current is the process running now.
func (s *Supervisor) Current() *Controller {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// Starts says how many processes were started so far.
func (s *Supervisor) Starts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts
}

// Kill SIGKILLs the running process, waiting for the restart first if the
// last one is already gone; the supervisor starts a new one.
func (s *Supervisor) Kill() {
	for {
		if current := s.Current(); !current.Exited() {
			current.Kill()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Fail SIGKILLs the running process and starts no other, as when its node
// dies: another replica, not this one's restart, must take over.
func (s *Supervisor) Fail() {
	s.mu.Lock()
	s.stopping = true
	current := s.current
	s.mu.Unlock()
	current.Kill()
	<-s.done
}

// Stop ends the current process and stops restarting it.
func (s *Supervisor) Stop() {
	s.mu.Lock()
	s.stopping = true
	current := s.current
	s.mu.Unlock()
	current.Stop()
	<-s.done
}
