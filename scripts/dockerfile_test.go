package scripts

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Images cannot be pulled or built here, so the Dockerfile is checked as
// text: parsed into instructions the way the builder reads them, then held
// to what the image promises.

// instruction is one Dockerfile instruction: its keyword in upper case and
// the rest of its (continued) line.
type instruction struct {
	cmd, args string
	line      int
}

// parseDockerfile splits src into instructions: comment lines dropped
// (also inside a continued instruction, as the builder does), lines ending
// in a backslash joined with the next. Parser directives (# syntax=) are
// comments here.
func parseDockerfile(src string) ([]instruction, error) {
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, raw := range strings.Split(src, "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		cont := strings.HasSuffix(line, "\\")
		cur.WriteString(strings.TrimSuffix(line, "\\"))
		cur.WriteByte(' ')
		if cont {
			continue
		}
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			continue
		}
		cmd, args, _ := strings.Cut(text, " ")
		if !regexp.MustCompile(`^[A-Za-z]+$`).MatchString(cmd) {
			return nil, fmt.Errorf("line %d: %q is not an instruction", start, cmd)
		}
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args), start})
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("line %d: continued past the end of the file", start)
	}
	return out, nil
}

// stage is one FROM and the instructions up to the next.
type stage struct {
	image, name string
	body        []instruction
}

func stages(ins []instruction) ([]stage, error) {
	var out []stage
	for _, in := range ins {
		if in.cmd != "FROM" {
			if len(out) == 0 {
				if in.cmd == "ARG" {
					continue // ARGs before the first FROM are allowed
				}
				return nil, fmt.Errorf("line %d: %s before FROM", in.line, in.cmd)
			}
			out[len(out)-1].body = append(out[len(out)-1].body, in)
			continue
		}
		var words []string
		for _, w := range strings.Fields(in.args) {
			if !strings.HasPrefix(w, "--") { // --platform=…
				words = append(words, w)
			}
		}
		s := stage{}
		switch {
		case len(words) == 1:
			s.image = words[0]
		case len(words) == 3 && strings.EqualFold(words[1], "AS"):
			s.image, s.name = words[0], words[2]
		default:
			return nil, fmt.Errorf("line %d: FROM %s", in.line, in.args)
		}
		out = append(out, s)
	}
	return out, nil
}

// execForm decodes an instruction's JSON array form (["a", "b"]); nil if
// it is in shell form.
func execForm(args string) []string {
	var v []string
	if json.Unmarshal([]byte(args), &v) != nil {
		return nil
	}
	return v
}

// pinned: every image by a tag other than latest, or by digest.
var pinnedImage = regexp.MustCompile(`^[a-z0-9./-]+(:[A-Za-z0-9][A-Za-z0-9._-]*)?(@sha256:[0-9a-f]{64})?$`)

// dockerfileProblems lists what is wrong with a Dockerfile for qrauthd.
func dockerfileProblems(src string) []string {
	ins, err := parseDockerfile(src)
	if err != nil {
		return []string{err.Error()}
	}
	st, err := stages(ins)
	if err != nil {
		return []string{err.Error()}
	}
	var probs []string
	bad := func(f string, a ...any) { probs = append(probs, fmt.Sprintf(f, a...)) }
	if len(st) < 2 {
		return []string{fmt.Sprintf("%d stage(s): want a builder and a final stage", len(st))}
	}
	names := map[string]bool{}
	for _, s := range st {
		if !names[s.image] { // a stage built on an earlier stage needs no tag
			img, digest, _ := strings.Cut(s.image, "@")
			tag := ""
			if i := strings.LastIndex(img, ":"); i > strings.LastIndex(img, "/") {
				tag = img[i+1:]
			}
			if !pinnedImage.MatchString(s.image) || (digest == "" && (tag == "" || tag == "latest")) {
				bad("image %s is not pinned by a tag (other than latest) or digest", s.image)
			}
		}
		if s.name != "" {
			names[s.name] = true
		}
	}

	// The builder: the release flags.
	var build strings.Builder
	for _, s := range st[:len(st)-1] {
		for _, in := range s.body {
			if in.cmd == "RUN" {
				build.WriteString(in.args + "\n")
			}
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "go build", "-trimpath", "-buildvcs=false", "-buildid=", "-X github.com/qrauth/qrauth/internal/buildinfo.Version=", "./cmd/qrauthd"} {
		if !strings.Contains(build.String(), want) {
			bad("the build stage does not run %q", want)
		}
	}

	// The final stage.
	final := st[len(st)-1]
	last := map[string]instruction{}
	var binary string
	for _, in := range final.body {
		last[in.cmd] = in
		if in.cmd == "COPY" && strings.Contains(in.args, "--from=") {
			if f := strings.Fields(in.args); path.Base(f[len(f)-1]) == "qrauthd" {
				binary = f[len(f)-1]
			}
		}
	}
	if binary == "" {
		bad("the final stage does not copy qrauthd from the builder")
	}
	if u, ok := last["USER"]; !ok {
		bad("the final stage runs as root: no USER")
	} else if name, _, _ := strings.Cut(u.args, ":"); name == "0" || name == "root" || name == "" {
		bad("the final stage runs as root: USER %s", u.args)
	}
	if v, ok := last["VOLUME"]; !ok || (v.args != "/data" && !slices.Equal(execForm(v.args), []string{"/data"})) {
		bad("no VOLUME /data")
	}
	if e, ok := last["EXPOSE"]; !ok || e.args != "8080" {
		bad("no EXPOSE 8080")
	}
	env := map[string]string{}
	for _, in := range final.body {
		if in.cmd == "ENV" {
			for _, kv := range strings.Fields(in.args) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		}
	}
	if env["QRAUTH_ADDR"] != "0.0.0.0:8080" {
		bad("QRAUTH_ADDR is %q, want 0.0.0.0:8080", env["QRAUTH_ADDR"])
	}
	if !strings.HasPrefix(env["QRAUTH_DATA"], "/data/") {
		bad("QRAUTH_DATA is %q, want a file in /data", env["QRAUTH_DATA"])
	}
	if h, ok := last["HEALTHCHECK"]; !ok {
		bad("no HEALTHCHECK")
	} else {
		_, cmd, _ := strings.Cut(h.args, "CMD ")
		argv := execForm(strings.TrimSpace(cmd))
		// Exec form: distroless has no shell to run a shell-form check.
		if len(argv) < 2 || argv[0] != binary || argv[1] != "healthcheck" {
			bad("HEALTHCHECK does not run %s healthcheck in exec form: %s", binary, h.args)
		}
		for i, a := range argv {
			if a == "-url" && (i+1 == len(argv) || !strings.HasPrefix(argv[i+1], "http://127.0.0.1:8080/healthz")) {
				bad("HEALTHCHECK asks %v, not this container's /healthz", argv[i+1:])
			}
		}
	}
	if e, ok := last["ENTRYPOINT"]; !ok || len(execForm(e.args)) == 0 || execForm(e.args)[0] != binary {
		bad("ENTRYPOINT is not %s in exec form", binary)
	}
	return probs
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range dockerfileProblems(string(b)) {
		t.Error(p)
	}
	// The same flags as the release script, so that the image's binary is
	// the released one.
	script, err := os.ReadFile("release")
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"CGO_ENABLED=0", "-trimpath", "-buildvcs=false", "-s -w -buildid=", "-X github.com/qrauth/qrauth/internal/buildinfo.Version=", "GOFLAGS="} {
		if !strings.Contains(string(script), flag) {
			t.Errorf("scripts/release lacks %q, which the Dockerfile uses", flag)
		}
	}
	di, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "data/", "dist/", "*.key"} {
		if !strings.Contains("\n"+string(di)+"\n", "\n"+want+"\n") {
			t.Errorf(".dockerignore does not leave out %s", want)
		}
	}
}

// The checks catch the mistakes they are for: each change of the real
// Dockerfile is found.
func TestDockerfileProblems(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	good := string(b)
	for _, tc := range []struct{ name, old, new, want string }{
		{"Root", "USER 65532:65532", "USER root", "runs as root"},
		{"NoUser", "USER 65532:65532", "", "no USER"},
		{"Latest", "gcr.io/distroless/static-debian12:nonroot", "gcr.io/distroless/static-debian12:latest", "not pinned"},
		{"Untagged", "golang:1.26.8-bookworm", "golang", "not pinned"},
		{"OneStage", "COPY --from=build /out/qrauthd", "COPY /out/qrauthd", "does not copy qrauthd"},
		{"NoHealthcheck", "\nHEALTHCHECK ", "\n# HEALTHCHECK ", "no HEALTHCHECK"},
		{"ShellHealthcheck", `CMD ["/usr/local/bin/qrauthd", "healthcheck", "-url", "http://127.0.0.1:8080/healthz"]`, "CMD curl -f http://127.0.0.1:8080/healthz", "HEALTHCHECK does not run"},
		{"Cgo", "CGO_ENABLED=0 ", "", "CGO_ENABLED=0"},
		{"NoTrimpath", "-trimpath ", "", "-trimpath"},
		{"NoVolume", "VOLUME /data", "VOLUME /var/lib/qrauth", "VOLUME /data"},
		{"Loopback", "QRAUTH_ADDR=0.0.0.0:8080", "QRAUTH_ADDR=127.0.0.1:8080", "QRAUTH_ADDR"},
		{"Continuation", "go build -trimpath -buildvcs=false \\", "go build -trimpath -buildvcs=false", "not an instruction"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.old) {
				t.Fatalf("the Dockerfile has no %q to change", tc.old)
			}
			probs := dockerfileProblems(strings.Replace(good, tc.old, tc.new, 1))
			if !strings.Contains(strings.Join(probs, "\n"), tc.want) {
				t.Errorf("problems %q, want one with %q", probs, tc.want)
			}
		})
	}
}
