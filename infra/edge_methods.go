package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfront"
)

// CloudFront accepts three method sets only.
var (
	methodsGetHead        = []string{"GET", "HEAD"}
	methodsGetHeadOptions = []string{"GET", "HEAD", "OPTIONS"}
	methodsAll            = []string{"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"}
)

// allowedMethods maps a configured method list to CloudFront's set.
func allowedMethods(ms []string) (awscloudfront.AllowedMethods, error) {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = strings.ToUpper(m)
	}
	slices.Sort(s)
	s = slices.Compact(s)
	switch {
	case len(s) == 0 || slices.Equal(s, methodsGetHead):
		return awscloudfront.AllowedMethods_ALLOW_GET_HEAD(), nil
	case slices.Equal(s, methodsGetHeadOptions):
		return awscloudfront.AllowedMethods_ALLOW_GET_HEAD_OPTIONS(), nil
	case slices.Equal(s, methodsAll):
		return awscloudfront.AllowedMethods_ALLOW_ALL(), nil
	}
	return nil, fmt.Errorf("allowed_methods %v: CloudFront allows only [GET HEAD], [GET HEAD OPTIONS] or all seven methods", ms)
}
