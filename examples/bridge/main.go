package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/crmbridge/crmbridge/routing/engine"
)

func main() {
	// SIGINT (Ctrl-C) and SIGTERM (docker stop, systemd, Kubernetes) cancel
	// ctx; run then shuts the HTTP server down gracefully.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills at once, without waiting for the shutdown
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		return // -h: the usage is printed
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bridge:", err)
		os.Exit(1)
	}
}

// Environment variables read by the bridge.
const (
	envAddr            = "BRIDGE_ADDR"
	envConfig          = "BRIDGE_CONFIG"
	envShutdownTimeout = "BRIDGE_SHUTDOWN_TIMEOUT"
	envAmoBaseURL      = "AMOCRM_BASE_URL"
	envAmoToken        = "AMOCRM_TOKEN"
	envWazzupAPIKey    = "WAZZUP_API_KEY"
	envWazzupBaseURL   = "WAZZUP_BASE_URL"
	envWazzupHookKey   = "WAZZUP_WEBHOOK_KEY"
)

// Defaults of the environment variables.
const (
	defaultServeAddr       = "127.0.0.1:8080"
	defaultDemoAddr        = "127.0.0.1:0" // any free port: the demo exits anyway
	defaultShutdownTimeout = 10 * time.Second
)

// settings is the bridge's configuration, read from flags and the
// environment by loadSettings.
type settings struct {
	// Demo is true when no credentials were given: the bridge runs against
	// the fake amoCRM and Wazzup servers with the demo configuration.
	Demo bool
	// Serve keeps serving until a signal; false (the demo's default) runs
	// the demo script and exits.
	Serve bool

	Addr            string
	ShutdownTimeout time.Duration
	Config          engine.Config

	AmoBaseURL, AmoToken                       string
	WazzupAPIKey, WazzupBaseURL, WazzupHookKey string
}

// run is the whole program, testable: args are the command-line flags,
// env reads the environment (os.Getenv), and everything the bridge does is
// printed to stdout. It returns when the demo is over, or when ctx is
// cancelled (a signal) and the server has shut down.
func run(ctx context.Context, args []string, env func(string) string, stdout io.Writer) error {
	s, err := loadSettings(args, env, stdout)
	if err != nil {
		return err
	}
	out := newReport(stdout)
	b, err := start(ctx, s, out)
	if err != nil {
		return err
	}
	if s.Demo {
		if err := b.demo(ctx); err != nil {
			return errors.Join(err, b.shutdown())
		}
		if !s.Serve {
			return b.shutdown()
		}
	}
	out.printf("serving until SIGINT or SIGTERM\n")
	return b.serveUntil(ctx)
}

// loadSettings reads the flags and the environment. Giving no credentials
// at all selects the demo; giving some but not all is an error naming the
// missing variables, so that a typo never silently starts the demo.
func loadSettings(args []string, env func(string) string, stdout io.Writer) (settings, error) {
	fs := flag.NewFlagSet("bridge", flag.ContinueOnError)
	fs.SetOutput(stdout)
	serve := fs.Bool("serve", false, "without credentials: run the demo, then keep serving until SIGINT/SIGTERM")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: bridge [-serve]\n\nWithout %s, %s and %s the bridge runs a demo against fake servers.\n\n",
			envAmoBaseURL, envAmoToken, envWazzupAPIKey)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return settings{}, err
	}
	if fs.NArg() > 0 {
		return settings{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	s := settings{
		Serve:         *serve,
		Addr:          env(envAddr),
		AmoBaseURL:    env(envAmoBaseURL),
		AmoToken:      env(envAmoToken),
		WazzupAPIKey:  env(envWazzupAPIKey),
		WazzupBaseURL: env(envWazzupBaseURL),
		WazzupHookKey: env(envWazzupHookKey),
	}
	s.ShutdownTimeout = defaultShutdownTimeout
	if v := env(envShutdownTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return settings{}, fmt.Errorf("%s=%q: want a positive duration such as 10s", envShutdownTimeout, v)
		}
		s.ShutdownTimeout = d
	}

	credentials := map[string]string{envAmoBaseURL: s.AmoBaseURL, envAmoToken: s.AmoToken, envWazzupAPIKey: s.WazzupAPIKey}
	var missing []string
	for _, name := range []string{envAmoBaseURL, envAmoToken, envWazzupAPIKey} {
		if credentials[name] == "" {
			missing = append(missing, name)
		}
	}
	s.Demo = len(missing) == len(credentials)
	configPath := env(envConfig)
	switch {
	case s.Demo:
		if configPath != "" {
			return settings{}, fmt.Errorf("%s is set but %s are not: give the credentials too, or unset it to run the demo",
				envConfig, strings.Join(missing, ", "))
		}
		if err := json.Unmarshal(demoConfigJSON, &s.Config); err != nil {
			return settings{}, fmt.Errorf("demo configuration: %w", err)
		}
		if s.Addr == "" {
			s.Addr = defaultDemoAddr
			if s.Serve {
				s.Addr = defaultServeAddr
			}
		}
		return s, nil
	case len(missing) > 0:
		return settings{}, fmt.Errorf("missing %s (give all of %s, %s and %s, or none for the demo)",
			strings.Join(missing, ", "), envAmoBaseURL, envAmoToken, envWazzupAPIKey)
	case configPath == "":
		return settings{}, fmt.Errorf("missing %s: the path of the routing configuration (JSON, see demo-config.json)", envConfig)
	}
	if s.Addr == "" {
		s.Addr = defaultServeAddr
	}
	cfg, err := readConfig(configPath)
	if err != nil {
		return settings{}, err
	}
	s.Config = cfg
	return s, nil
}

// readConfig reads a engine.Config from a JSON file. Unknown fields are
// errors: a misspelt setting must not be ignored silently.
func readConfig(path string) (engine.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return engine.Config{}, fmt.Errorf("%s: %w", envConfig, err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var cfg engine.Config
	if err := dec.Decode(&cfg); err != nil {
		return engine.Config{}, fmt.Errorf("%s=%s: %w", envConfig, path, err)
	}
	return cfg, nil
}
