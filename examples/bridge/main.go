package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/crmbridge/crmbridge/routing/engine"
)

func main() {
	// SIGINT (Ctrl-C) and SIGTERM (docker stop, systemd, Kubernetes) cancel
	// ctx; run then shuts the bridge down gracefully.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills at once, without waiting for the shutdown
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
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
	envRefreshTimeout  = "BRIDGE_REFRESH_SHUTDOWN_TIMEOUT"
	envAPIKey          = "BRIDGE_API_KEY"
	envNotifyURL       = "BRIDGE_NOTIFY_URL"
	envAccount         = "BRIDGE_ACCOUNT"
	envTick            = "BRIDGE_TICK"
	envLogLevel        = "BRIDGE_LOG_LEVEL"
	envPGDSN           = "CRMBRIDGE_PG_DSN"
	envAmoBaseURL      = "AMOCRM_BASE_URL"
	envAmoToken        = "AMOCRM_TOKEN"
	envAmoHookSecret   = "AMOCRM_WEBHOOK_SECRET"
	envAmoClientID     = "AMOCRM_CLIENT_ID"
	envAmoClientSecret = "AMOCRM_CLIENT_SECRET"
	envAmoRedirectURI  = "AMOCRM_REDIRECT_URI"
	envAmoAuthCode     = "AMOCRM_AUTH_CODE"
	envWazzupAPIKey    = "WAZZUP_API_KEY"
	envWazzupBaseURL   = "WAZZUP_BASE_URL"
	envWazzupHookKey   = "WAZZUP_WEBHOOK_KEY"
)

// Defaults of the environment variables.
const (
	defaultServeAddr       = "127.0.0.1:8080"
	defaultDemoAddr        = "127.0.0.1:0" // any free port: the demo exits anyway
	defaultShutdownTimeout = 10 * time.Second
	defaultRefreshTimeout  = 10 * time.Second
	defaultTick            = 30 * time.Second
	defaultAccount         = "default"
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
	Tick            time.Duration
	LogLevel        slog.Level
	Config          engine.Config

	// RefreshShutdownTimeout is how long the chats waiting for a refresh
	// may take at shutdown, after the requests in flight (0: 10 s).
	RefreshShutdownTimeout time.Duration

	// DSN selects PostgreSQL state (package routing/pgstore) under
	// Account; empty keeps the state in memory.
	DSN, Account string
	// APIKey guards the employees' endpoint; NotifyURL receives the
	// notifications.
	APIKey, NotifyURL string

	AmoBaseURL, AmoToken, AmoHookSecret string
	// OAuth instead of AmoToken: the integration's keys, and an
	// authorization code to exchange when the token store is empty.
	AmoClientID, AmoClientSecret, AmoRedirectURI, AmoAuthCode string
	WazzupAPIKey, WazzupBaseURL, WazzupHookKey                string
}

// run is the whole program, testable: args are the command-line flags,
// env reads the environment (os.Getenv), the demo's summary goes to stdout
// and the JSON logs to logw. It returns when the demo is over, or when ctx
// is cancelled (a signal) and the bridge has shut down.
func run(ctx context.Context, args []string, env func(string) string, stdout, logw io.Writer) error {
	s, err := loadSettings(args, env, stdout)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(logw, &slog.HandlerOptions{Level: s.LogLevel}))
	b, err := start(ctx, s, log, stdout)
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
	log.Info("serving until SIGINT or SIGTERM", "addr", b.baseURL)
	return b.serveUntil(ctx)
}

// loadSettings reads the flags and the environment. Giving no credentials
// at all selects the demo; giving some but not all is an error naming the
// missing variables, so that a typo never silently starts the demo.
func loadSettings(args []string, env func(string) string, stdout io.Writer) (settings, error) {
	fs := flag.NewFlagSet("bridge", flag.ContinueOnError)
	fs.SetOutput(stdout)
	serve := fs.Bool("serve", false, "without credentials: run the demo, then keep serving until SIGINT/SIGTERM")
	// The default is not env(envPGDSN): -h prints defaults, and a DSN may
	// hold a password.
	dsn := fs.String("dsn", "", "PostgreSQL connection string for the state (default: $"+envPGDSN+"; neither: in memory)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: bridge [-serve] [-dsn postgres://…]\n\nWithout credentials (%s, %s, %s or the OAuth settings) the bridge runs a demo against fake servers.\n\n",
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
		Serve:           *serve,
		Addr:            env(envAddr),
		DSN:             cmp.Or(*dsn, env(envPGDSN)),
		Account:         env(envAccount),
		APIKey:          env(envAPIKey),
		NotifyURL:       env(envNotifyURL),
		AmoBaseURL:      env(envAmoBaseURL),
		AmoToken:        env(envAmoToken),
		AmoHookSecret:   env(envAmoHookSecret),
		AmoClientID:     env(envAmoClientID),
		AmoClientSecret: env(envAmoClientSecret),
		AmoRedirectURI:  env(envAmoRedirectURI),
		AmoAuthCode:     env(envAmoAuthCode),
		WazzupAPIKey:    env(envWazzupAPIKey),
		WazzupBaseURL:   env(envWazzupBaseURL),
		WazzupHookKey:   env(envWazzupHookKey),
	}
	if s.Account == "" {
		s.Account = defaultAccount
	}
	var err error
	if s.ShutdownTimeout, err = duration(env, envShutdownTimeout, defaultShutdownTimeout); err != nil {
		return settings{}, err
	}
	if s.RefreshShutdownTimeout, err = duration(env, envRefreshTimeout, defaultRefreshTimeout); err != nil {
		return settings{}, err
	}
	if s.Tick, err = duration(env, envTick, defaultTick); err != nil {
		return settings{}, err
	}
	if v := env(envLogLevel); v != "" {
		if err := s.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return settings{}, fmt.Errorf("%s=%q: want debug, info, warn or error", envLogLevel, v)
		}
	}
	if s.NotifyURL != "" {
		u, err := url.Parse(s.NotifyURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return settings{}, fmt.Errorf("%s=%q: want an absolute http(s) URL", envNotifyURL, s.NotifyURL)
		}
	}

	// The credentials: amoCRM's address, Wazzup's key, and either a
	// long-lived amoCRM token or the OAuth integration's three keys.
	oauth := []string{envAmoClientID, envAmoClientSecret, envAmoRedirectURI}
	given := map[string]bool{}
	for _, name := range append([]string{envAmoBaseURL, envAmoToken, envWazzupAPIKey, envAmoAuthCode}, oauth...) {
		given[name] = env(name) != ""
	}
	var missing []string
	s.Demo = true
	for _, ok := range given {
		if ok {
			s.Demo = false
		}
	}
	if !s.Demo {
		for _, name := range []string{envAmoBaseURL, envWazzupAPIKey} {
			if !given[name] {
				missing = append(missing, name)
			}
		}
		usesOAuth := given[envAmoClientID] || given[envAmoClientSecret] || given[envAmoRedirectURI] || given[envAmoAuthCode]
		switch {
		case given[envAmoToken] && usesOAuth:
			return settings{}, fmt.Errorf("%s and the OAuth settings (%s) are both set: give one way to authorize", envAmoToken, strings.Join(oauth, ", "))
		case usesOAuth:
			for _, name := range oauth {
				if !given[name] {
					missing = append(missing, name)
				}
			}
		case !given[envAmoToken]:
			missing = append(missing, envAmoToken+" (or "+strings.Join(oauth, ", ")+")")
		}
	}
	configPath := env(envConfig)
	switch {
	case s.Demo:
		if configPath != "" {
			return settings{}, fmt.Errorf("%s is set but no credentials are: give them too, or unset it to run the demo", envConfig)
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
		return settings{}, fmt.Errorf("missing %s (give the credentials, or none for the demo)", strings.Join(missing, ", "))
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

// duration reads a positive duration from the environment variable name.
func duration(env func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := env(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration such as 10s", name, v)
	}
	return d, nil
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
