package fetch

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/rktng/rkt/pkg/config"
)

// rkt's "aws" auth type is for images kept in Amazon S3: each request to
// such a host is signed with AWS Signature Version 4 for the s3 service.

const (
	awsAlgorithm = "AWS4-HMAC-SHA256"
	awsService   = "s3"
	// awsDefaultRegion is S3's region when auth.d names none.
	awsDefaultRegion = "us-east-1"
	// emptySHA256 is the SHA-256 of an empty body: every request here is
	// a GET or HEAD.
	emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// awsSign adds the headers of an AWS Signature Version 4 to req (a GET or
// HEAD with no body) for service at now. It signs the host, Range and
// every x-amz-* header; for s3 it adds x-amz-content-sha256, which S3
// requires.
func awsSign(req *http.Request, c config.AWSCredentials, service string, now time.Time) {
	region := c.Region
	if region == "" {
		region = awsDefaultRegion
	}
	amzDate := now.UTC().Format("20060102T150405Z")
	day := amzDate[:8]
	req.Header.Set("X-Amz-Date", amzDate)
	if service == awsService {
		req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	}

	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	headers := map[string]string{"host": host}
	for name, values := range req.Header {
		l := strings.ToLower(name)
		if l == "range" || strings.HasPrefix(l, "x-amz-") {
			headers[l] = strings.Join(values, ",")
		}
	}
	names := make([]string, 0, len(headers))
	for n := range headers {
		names = append(names, n)
	}
	sort.Strings(names)
	var canonHeaders strings.Builder
	for _, n := range names {
		canonHeaders.WriteString(n + ":" + strings.Join(strings.Fields(headers[n]), " ") + "\n")
	}
	signed := strings.Join(names, ";")

	canonical := strings.Join([]string{
		req.Method,
		awsEscape(req.URL.Path, false),
		awsQuery(req.URL.RawQuery),
		canonHeaders.String(),
		signed,
		emptySHA256,
	}, "\n")
	scope := day + "/" + region + "/" + service + "/aws4_request"
	sum := sha256.Sum256([]byte(canonical))
	toSign := awsAlgorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])

	key := []byte("AWS4" + c.SecretAccessKey)
	for _, part := range []string{day, region, service, "aws4_request"} {
		key = hmacSHA256(key, part)
	}
	signature := hex.EncodeToString(hmacSHA256(key, toSign))
	req.Header.Set("Authorization", awsAlgorithm+" Credential="+c.AccessKeyID+"/"+scope+
		", SignedHeaders="+signed+", Signature="+signature)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// awsEscape percent-encodes s as AWS canonical requests do: everything but
// A-Z a-z 0-9 - _ . ~, and '/' too when slash is set. An empty path is /.
func awsEscape(s string, slash bool) string {
	if s == "" && !slash {
		return "/"
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~', c == '/' && !slash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// awsQuery is the canonical query string: every parameter encoded, sorted
// by name and then value, a missing value as empty.
func awsQuery(raw string) string {
	if raw == "" {
		return ""
	}
	type kv struct{ k, v string }
	var params []kv
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		// As received, then decoded once, so that they are encoded the
		// AWS way below whatever encoding the URL used.
		if dk, err := url.PathUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.PathUnescape(v); err == nil {
			v = dv
		}
		params = append(params, kv{awsEscape(k, true), awsEscape(v, true)})
	}
	sort.Slice(params, func(i, j int) bool {
		if params[i].k != params[j].k {
			return params[i].k < params[j].k
		}
		return params[i].v < params[j].v
	})
	parts := make([]string, len(params))
	for i, p := range params {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}
