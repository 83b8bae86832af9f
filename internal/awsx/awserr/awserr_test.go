package awserr

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// answer builds the error the SDK returns for an HTTP status and an error code ("" for a
// bodiless answer such as HEAD's), wrapped the way operations wrap it.
func answer(status int, code string) error {
	var cause error = errors.New("no body")
	if code != "" {
		cause = &smithy.GenericAPIError{Code: code, Message: "m"}
	}
	re := &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: cause}}
	return fmt.Errorf("operation error S3: GetObject: %w", re)
}

func TestS3(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want S3Kind
	}{
		{answer(404, "NoSuchBucket"), S3NoBucket},
		{answer(404, "NoSuchKey"), S3NotFound},
		{answer(404, ""), S3NotFound}, // HEAD
		{answer(412, "PreconditionFailed"), S3Precondition},
		{answer(409, "ConditionalRequestConflict"), S3Precondition},
		{answer(412, ""), S3Precondition},
		{answer(403, "SignatureDoesNotMatch"), S3AccessDenied},
		{answer(403, ""), S3AccessDenied},
		{answer(500, "InternalError"), S3Other},
		{errors.New("dial tcp: connection refused"), S3Other},
		{nil, S3Other},
	}
	for _, tc := range tests {
		if got := S3(tc.err); got != tc.want {
			t.Errorf("S3(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	if HTTPStatus(answer(404, "NoSuchKey")) != 404 || Code(answer(404, "NoSuchKey")) != "NoSuchKey" || Code(errors.New("x")) != "" {
		t.Error("HTTPStatus/Code")
	}
}

func TestSSMNotFound(t *testing.T) {
	t.Parallel()
	if !SSMNotFound(&smithy.GenericAPIError{Code: "ParameterNotFound"}) || !SSMNotFound(errors.New("api error InvocationDoesNotExist: not yet")) ||
		SSMNotFound(&smithy.GenericAPIError{Code: "AccessDeniedException"}) || SSMNotFound(nil) {
		t.Error("SSMNotFound")
	}
}
