// Command target is the HTTP server the load tests aim Locust at.
//
//	target [-listen ADDR] [-fail-every N]
//
// Flags (each also read from an environment variable, the flag wins):
//
//	-listen ADDR    listen address (TARGET_LISTEN; default ":8080")
//	-fail-every N   N > 0: every Nth counted request to a plain path is
//	                answered 500 "fail" (TARGET_FAIL_EVERY; default 0: never)
//
// Endpoints:
//
//	GET  /healthz        200 "ok"; not counted
//	GET  /stats          200, JSON counters (below); not counted
//	POST /stats/reset    zeroes the counters, 204; not counted
//	ANY  /fail?every=N   counted; the Nth, 2Nth, ... request to /fail (one
//	                     counter for all of them) is answered 500 "fail", the
//	                     others 200 "ok"; every defaults to 1 (always fail)
//	ANY  anything else   counted; 200 "ok" (500 "fail" per -fail-every)
//
// Every counted path takes ?delay=DURATION (Go syntax: 50ms, 1s; at most
// 10s): the answer is sent after that long.
//
// /stats answers {"requests":N,"ok":N,"errors":N,"paths":{"/":{"requests":N,
// "errors":N},...}}; paths beyond the first 100 distinct ones are counted
// under "(other)". Requests are counted when they are answered.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

const (
	maxPaths = 100
	maxDelay = 10 * time.Second
)

type pathStats struct {
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
}

type stats struct {
	Requests uint64                `json:"requests"`
	OK       uint64                `json:"ok"`
	Errors   uint64                `json:"errors"`
	Paths    map[string]*pathStats `json:"paths"`
}

type server struct {
	failEvery uint64

	mu        sync.Mutex
	stats     stats
	plain     uint64 // counted requests to plain paths, for -fail-every
	failCount uint64 // requests to /fail
}

func newServer(failEvery uint64) *server {
	s := &server{failEvery: failEvery}
	s.reset()
	return s
}

func (s *server) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = stats{Paths: map[string]*pathStats{}}
	s.plain, s.failCount = 0, 0
}

// decide counts a request to path and says whether it fails.
func (s *server) decide(path string, failEvery uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	var fail bool
	if path == "/fail" {
		s.failCount++
		fail = s.failCount%failEvery == 0
	} else if failEvery > 0 {
		s.plain++
		fail = s.plain%failEvery == 0
	}
	s.stats.Requests++
	if fail {
		s.stats.Errors++
	} else {
		s.stats.OK++
	}
	key := path
	if _, ok := s.stats.Paths[key]; !ok && len(s.stats.Paths) >= maxPaths {
		key = "(other)"
	}
	p := s.stats.Paths[key]
	if p == nil {
		p = &pathStats{}
		s.stats.Paths[key] = p
	}
	p.Requests++
	if fail {
		p.Errors++
	}
	return fail
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz":
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "ok")
		return
	case r.URL.Path == "/stats" && r.Method == http.MethodGet:
		s.mu.Lock()
		body, err := json.Marshal(&s.stats)
		s.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(body, '\n'))
		return
	case r.URL.Path == "/stats/reset" && r.Method == http.MethodPost:
		s.reset()
		w.WriteHeader(http.StatusNoContent)
		return
	}

	query := r.URL.Query()
	failEvery := s.failEvery
	if r.URL.Path == "/fail" {
		failEvery = 1
		if v := query.Get("every"); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n == 0 {
				http.Error(w, "every must be a positive integer", http.StatusBadRequest)
				return
			}
			failEvery = n
		}
	}
	if v := query.Get("delay"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > maxDelay {
			http.Error(w, "delay must be a duration between 0 and 10s", http.StatusBadRequest)
			return
		}
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	if s.decide(r.URL.Path, failEvery) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, "fail")
		return
	}
	fmt.Fprint(w, "ok")
}

func main() {
	listen := flag.String("listen", envOr("TARGET_LISTEN", ":8080"), "listen address (env TARGET_LISTEN)")
	failEvery := flag.Uint64("fail-every", 0, "every Nth request to a plain path fails with 500; 0: never (env TARGET_FAIL_EVERY)")
	if v := os.Getenv("TARGET_FAIL_EVERY"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			log.Fatalf("TARGET_FAIL_EVERY=%q: %v", v, err)
		}
		*failEvery = n
	}
	flag.Parse()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: newServer(*failEvery), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("target listening on %s (fail-every %d)", ln.Addr(), *failEvery)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	<-done // in-flight requests answered (or 5s passed)
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
