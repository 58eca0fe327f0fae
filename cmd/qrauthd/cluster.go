package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/qrauth/qrauth/shared/redis"
)

// Cluster mode (docs/cluster.md): -store postgres://… for what lasts and
// -redis redis://… for the short-lived state the instances share. Without
// -redis the shared state stays in this process (server.Config.Shared nil),
// exactly as a single instance always ran.

// redisPasswordEnv holds the Redis password when it is not in the -redis
// URL, so that it appears neither in the process list nor in a config
// file. It is no flag of its own: a password on the command line is what
// it avoids.
const redisPasswordEnv = "QRAUTH_REDIS_PASSWORD"

// redisOpenTimeout bounds the first connection to Redis at start: an
// address that drops packets fails the start after it rather than hanging.
const redisOpenTimeout = 10 * time.Second

// redisFlags adds -redis, -redis-prefix and -redis-ca.
func (m *Main) redisFlags(fs *flag.FlagSet) {
	fs.StringVar(&m.RedisURL, "redis", env("REDIS", ""),
		"Redis holding the state a cluster's instances share, as redis://[USER:PASSWORD@]HOST:6379/DB or rediss:// for TLS; the password may instead be in "+
			redisPasswordEnv+"; needs -store postgres:// (QRAUTH_REDIS; docs/cluster.md)")
	fs.StringVar(&m.RedisPrefix, "redis-prefix", env("REDIS_PREFIX", redis.DefaultPrefix),
		"start of every Redis key and channel of this deployment, so that one Redis can serve several (QRAUTH_REDIS_PREFIX)")
	fs.StringVar(&m.RedisCA, "redis-ca", env("REDIS_CA", ""),
		"PEM file of the CA that signed the rediss:// server's certificate, trusted instead of the system roots (QRAUTH_REDIS_CA)")
}

// checkRedisFlags refuses, before anything is opened, a -redis that
// cannot work: a URL that is not Redis's, TLS settings for a plain URL, a
// password given twice, and a cluster on the bbolt file, which only one
// process can open. It keeps the password from the environment for Run.
func (m *Main) checkRedisFlags() error {
	pw := os.Getenv(redisPasswordEnv)
	if m.RedisURL == "" {
		switch {
		case m.RedisCA != "":
			return errors.New("-redis-ca is for a rediss:// URL, and -redis is not set")
		case pw != "":
			return fmt.Errorf("%s is set but -redis is not: say which Redis it is for", redisPasswordEnv)
		}
		return nil
	}
	u, err := url.Parse(m.RedisURL)
	if err != nil {
		// url's own error quotes the whole URL, password included.
		return errors.New("-redis: the URL does not parse (want redis://[USER:PASSWORD@]HOST:PORT/DB, or rediss://… for TLS)")
	}
	switch u.Scheme {
	case "redis", "rediss", "unix":
	default:
		return fmt.Errorf("-redis %q: want a redis:// URL, or rediss:// for TLS", redactURL(m.RedisURL))
	}
	if m.RedisCA != "" && u.Scheme != "rediss" {
		return fmt.Errorf("-redis-ca is for a rediss:// URL, and -redis is %s: use rediss:// to speak TLS", redactURL(m.RedisURL))
	}
	if _, inURL := u.User.Password(); inURL && pw != "" {
		return fmt.Errorf("the Redis password is both in -redis and in %s: give it once", redisPasswordEnv)
	}
	if !isPostgresURL(m.StoreURL) {
		return errors.New("-redis makes this instance one of a cluster, and a cluster's instances must share one database, " +
			"which the -data file cannot be (one process opens it): add -store postgres://… (docs/cluster.md)")
	}
	m.redisPassword = pw
	return nil
}

// redisDialURL is -redis with the password from the environment, if any,
// put into it: what is dialled, never shown.
func (m *Main) redisDialURL() string {
	if m.redisPassword == "" {
		return m.RedisURL
	}
	u, err := url.Parse(m.RedisURL)
	if err != nil {
		return m.RedisURL // checkRedisFlags refused it already
	}
	u.User = url.UserPassword(u.User.Username(), m.redisPassword)
	return u.String()
}

// redisWhere names the Redis of -redis for a message: host:port, or the
// socket's path.
func redisWhere(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a URL that does not parse)"
	}
	if u.Scheme == "unix" {
		return u.Path
	}
	if u.Port() == "" {
		return u.Hostname() + ":6379"
	}
	return u.Host
}

// openShared opens the Redis of -redis and checks that it answers; nil
// without -redis. Its errors name the address and never the password.
func (m *Main) openShared(log *slog.Logger) (*redis.Store, error) {
	if m.RedisURL == "" {
		return nil, nil
	}
	where := redisWhere(m.RedisURL)
	opts := redis.Options{Prefix: m.RedisPrefix}
	if m.RedisCA != "" {
		pem, err := os.ReadFile(m.RedisCA)
		if err != nil {
			return nil, fmt.Errorf("-redis-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-redis-ca %s: no PEM certificate in it", m.RedisCA)
		}
		opts.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	secrets := []string{m.redisPassword, urlPassword(m.RedisURL)}
	// go-redis reports what it retries on its own (a dial that failed, a
	// subscription it re-made) through a global logger that writes plain
	// lines to stderr; into this log instead, in its format.
	goredis.SetLogger(redisLogger{log: log, secrets: secrets})
	ctx, cancel := context.WithTimeout(context.Background(), redisOpenTimeout)
	defer cancel()
	s, err := redis.Open(ctx, m.redisDialURL(), opts)
	if err != nil {
		return nil, fmt.Errorf("redis (-redis) at %s: %s", where, redactAll(err.Error(), secrets))
	}
	prefix := m.RedisPrefix
	if prefix == "" {
		prefix = redis.DefaultPrefix
	}
	log.Info("shared state open", slog.String("redis", redactURL(m.RedisURL)), slog.String("prefix", prefix))
	return s, nil
}

// urlPassword is the password in a URL, "" if none.
func urlPassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	pw, _ := u.User.Password()
	return pw
}

// redactAll replaces every non-empty secret in msg.
func redactAll(msg string, secrets []string) string {
	for _, secret := range secrets {
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "xxxxx")
		}
	}
	return msg
}

// redisLogger is go-redis's logger on qrauthd's: a warning, passwords
// removed.
type redisLogger struct {
	log     *slog.Logger
	secrets []string
}

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis client", slog.String("detail", redactAll(fmt.Sprintf(format, v...), l.secrets)))
}
