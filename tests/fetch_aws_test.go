package tests

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// awsKey is an S3 stand-in's credentials: it checks AWS Signature Version
// 4 on requests, written here from the specification, apart from rkt's
// signer (which pkg/fetch tests against AWS's published examples).
type awsKey struct {
	id, secret, region string
}

func (k *awsKey) verify(r *http.Request) error {
	rest, ok := strings.CutPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ")
	if !ok {
		return errors.New("no AWS4-HMAC-SHA256 authorization")
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ", ") {
		name, value, _ := strings.Cut(f, "=")
		fields[name] = value
	}
	scope := strings.SplitN(fields["Credential"], "/", 2)
	if len(scope) != 2 || scope[0] != k.id {
		return fmt.Errorf("credential %q is not for key %s", fields["Credential"], k.id)
	}
	date := r.Header.Get("X-Amz-Date")
	when, err := time.Parse("20060102T150405Z", date)
	if err != nil || time.Since(when).Abs() > 15*time.Minute {
		return fmt.Errorf("bad or stale X-Amz-Date %q", date)
	}
	if want := date[:8] + "/" + k.region + "/s3/aws4_request"; scope[1] != want {
		return fmt.Errorf("scope %q, want %q", scope[1], want)
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	var canon strings.Builder
	for _, h := range signed {
		v := r.Header.Get(h)
		if h == "host" {
			v = r.Host
		}
		fmt.Fprintf(&canon, "%s:%s\n", h, strings.TrimSpace(v))
	}
	for _, must := range []string{"host", "x-amz-date", "x-amz-content-sha256"} {
		if !strings.Contains(";"+fields["SignedHeaders"]+";", ";"+must+";") {
			return fmt.Errorf("%s is not signed", must)
		}
	}
	request := strings.Join([]string{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, canon.String(),
		fields["SignedHeaders"], r.Header.Get("X-Amz-Content-Sha256")}, "\n")
	sum := sha256.Sum256([]byte(request))
	toSign := "AWS4-HMAC-SHA256\n" + date + "\n" + scope[1] + "\n" + hex.EncodeToString(sum[:])
	mac := func(key []byte, s string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	key := mac(mac(mac(mac([]byte("AWS4"+k.secret), date[:8]), k.region), "s3"), "aws4_request")
	want := hex.EncodeToString(mac(key, toSign))
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return errors.New("signature does not match")
	}
	return nil
}

// TestFetchAWSAuth: auth.d's aws credentials sign each request for their
// domain with AWS Signature Version 4, as an S3 bucket requires; a wrong
// secret is refused by the server and the refusal names the credentials.
func TestFetchAWSAuth(t *testing.T) {
	e := newFtEnv(t)
	k := libKey(t, "ed25519", nil)
	e.trust("", k)
	aci := ftImage{name: "127.0.0.1/bucket/app", version: "1"}.build(t)
	bucket := &awsKey{id: "AKIDRKTTEST", secret: "bucket/secret+key", region: "eu-west-1"}
	e.srv.put("/bucket/app.aci", &ftFile{data: aci, aws: bucket})
	e.srv.put("/bucket/app.aci.asc", &ftFile{data: k.sign(aci), aws: bucket})
	u := e.srv.URL("/bucket/app.aci")
	e.mustRefuse("no credentials for 127.0.0.1", "fetch", u)

	authd := filepath.Join(e.LocalConfig, "auth.d")
	if err := os.MkdirAll(authd, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(secret string) {
		body := fmt.Sprintf(`{"rktKind":"auth","rktVersion":"v1","domains":[%q],"type":"aws",`+
			`"credentials":{"accessKeyID":%q,"secretAccessKey":%q,"awsRegion":%q}}`, e.srv.Host, bucket.id, secret, bucket.region)
		if err := os.WriteFile(filepath.Join(authd, "s3.json"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("not the secret")
	e.mustRefuse("were refused", "fetch", u)
	write(bucket.secret)
	if id := e.mustRkt("fetch", u); !strings.HasPrefix(id, "sha512-") {
		t.Fatalf("fetch with aws credentials printed %q", id)
	}
}
