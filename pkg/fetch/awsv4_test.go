package fetch

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rktng/rkt/pkg/config"
)

// TestAWSSignVectors checks the signer against AWS's published examples:
// two of the Signature Version 4 test suite (service "service") and the S3
// documentation's GET Object with a Range.
func TestAWSSignVectors(t *testing.T) {
	suite := config.AWSCredentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", Region: "us-east-1"}
	suiteTime := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	s3 := config.AWSCredentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	s3Time := time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, url, service string
		creds              config.AWSCredentials
		now                time.Time
		header             map[string]string
		signed, signature  string
	}{
		{"get-vanilla", "https://example.amazonaws.com/", "service", suite, suiteTime, nil,
			"host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{"get-vanilla-query-order-key-case", "https://example.amazonaws.com/?Param2=value2&Param1=value1", "service", suite, suiteTime, nil,
			"host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
		{"s3-get-object", "https://examplebucket.s3.amazonaws.com/test.txt", "s3", s3, s3Time, map[string]string{"Range": "bytes=0-9"},
			"host;range;x-amz-content-sha256;x-amz-date", "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"},
		{"s3-list-objects", "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J", "s3", s3, s3Time, nil,
			"host;x-amz-content-sha256;x-amz-date", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"},
	} {
		req, err := http.NewRequest(http.MethodGet, tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		awsSign(req, tc.creds, tc.service, tc.now)
		auth := req.Header.Get("Authorization")
		if !strings.Contains(auth, "SignedHeaders="+tc.signed+",") || !strings.HasSuffix(auth, "Signature="+tc.signature) {
			t.Errorf("%s: Authorization: %s\nwant SignedHeaders=%s and Signature=%s", tc.name, auth, tc.signed, tc.signature)
		}
	}
}

func TestAWSEscape(t *testing.T) {
	for in, want := range map[string]string{
		"/a b/ü.aci": "/a%20b/%C3%BC.aci",
		"/x!y(z)*":   "/x%21y%28z%29%2A",
		"":           "/",
	} {
		if got := awsEscape(in, false); got != want {
			t.Errorf("path %q: got %q, want %q", in, got, want)
		}
	}
	if got := awsQuery("b=2&a=x%2Fy&a=1&c"); got != "a=1&a=x%2Fy&b=2&c=" {
		t.Errorf("query: got %q", got)
	}
}
