// Package awserr classifies the errors AWS answers with (S3 and SSM), in one place, for the
// packages that talk to AWS directly. It depends on nothing but smithy-go and the SDK's
// transport error, so the box agent (cmd/zops-box) can use it without linking service
// clients.
package awserr

import (
	"errors"
	"net/http"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// HTTPStatus returns the HTTP status of an AWS error answer, 0 when err carries none.
func HTTPStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// Code returns the AWS error code (NoSuchKey, ParameterNotFound, ...), "" when there is none.
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// S3Kind is what an S3 failure means to a caller.
type S3Kind int

// The kinds of S3 failure callers act on.
const (
	S3Other        S3Kind = iota // anything else: report it as is
	S3NoBucket                   // NoSuchBucket
	S3NotFound                   // NoSuchKey, NotFound (HEAD), or a bare 404
	S3Precondition               // If-Match / If-None-Match did not hold (412, or versitygw's codes)
	S3AccessDenied               // credentials or policy (403 and its codes)
)

// S3 classifies an S3 error. NoSuchBucket wins over the 404 status it shares with a missing
// key; a HEAD answer has no body, so a missing key there is a bare 404 ("NotFound").
func S3(err error) S3Kind {
	if err == nil {
		return S3Other
	}
	switch Code(err) {
	case "NoSuchBucket":
		return S3NoBucket
	case "NoSuchKey", "NotFound":
		return S3NotFound
	case "PreconditionFailed", "ConditionalRequestConflict":
		return S3Precondition
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden":
		return S3AccessDenied
	}
	switch HTTPStatus(err) {
	case http.StatusNotFound:
		return S3NotFound
	case http.StatusPreconditionFailed:
		return S3Precondition
	case http.StatusForbidden:
		return S3AccessDenied
	}
	return S3Other
}

// SSMNotFound reports whether err says an SSM parameter or a command invocation does not
// exist (yet): ParameterNotFound, InvocationDoesNotExist.
func SSMNotFound(err error) bool {
	if err == nil {
		return false
	}
	switch Code(err) {
	case "ParameterNotFound", "InvocationDoesNotExist":
		return true
	}
	// Emulators do not always answer with the JSON error shape the SDK decodes a code from.
	msg := err.Error()
	return strings.Contains(msg, "ParameterNotFound") || strings.Contains(msg, "InvocationDoesNotExist")
}
