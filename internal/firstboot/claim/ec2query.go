package claim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// QueryEC2 is the EC2 Query API for the three calls first boot makes: form-encoded POSTs,
// SigV4-signed, XML answers. It exists so zops-box does not link the EC2 SDK (see the package
// comment); the request and response shapes are EC2's 2016-11-15 API.
type QueryEC2 struct {
	Region      string
	Endpoint    string // default https://ec2.<region>.amazonaws.com/
	Credentials aws.CredentialsProvider
	HTTP        *http.Client
}

// APIError is an EC2 error answer (Code such as VolumeInUse, IncorrectState).
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("ec2 %s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// ErrorCode lets callers match the code without this type.
func (e *APIError) ErrorCode() string { return e.Code }

const ec2APIVersion = "2016-11-15"

func (q *QueryEC2) call(ctx context.Context, action string, params url.Values, out any) error {
	form := url.Values{"Action": {action}, "Version": {ec2APIVersion}}
	for k, v := range params {
		form[k] = v
	}
	body := form.Encode()
	ep := q.Endpoint
	if ep == "" {
		ep = "https://ec2." + q.Region + ".amazonaws.com/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	creds, err := q.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("ec2 %s: credentials: %w", action, err)
	}
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ec2", q.Region, time.Now().UTC()); err != nil {
		return fmt.Errorf("ec2 %s: sign: %w", action, err)
	}
	hc := q.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("ec2 %s: %w", action, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("ec2 %s: %w", action, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Errors []struct {
				Code    string `xml:"Code"`
				Message string `xml:"Message"`
			} `xml:"Errors>Error"`
		}
		ae := &APIError{Status: resp.StatusCode, Code: "Unknown", Message: strings.TrimSpace(string(raw))}
		if xml.Unmarshal(raw, &e) == nil && len(e.Errors) > 0 {
			ae.Code, ae.Message = e.Errors[0].Code, e.Errors[0].Message
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if err := xml.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("ec2 %s: decode answer: %w", action, err)
	}
	return nil
}

// DescribeVolume implements EC2API.
func (q *QueryEC2) DescribeVolume(ctx context.Context, id string) (Volume, error) {
	var out struct {
		Volumes []struct {
			ID          string `xml:"volumeId"`
			Zone        string `xml:"availabilityZone"`
			State       string `xml:"status"`
			Attachments []struct {
				Instance string `xml:"instanceId"`
				State    string `xml:"status"`
			} `xml:"attachmentSet>item"`
		} `xml:"volumeSet>item"`
	}
	if err := q.call(ctx, "DescribeVolumes", url.Values{"VolumeId.1": {id}}, &out); err != nil {
		return Volume{}, err
	}
	if len(out.Volumes) != 1 {
		return Volume{}, fmt.Errorf("%w: DescribeVolumes %s returned %d volumes", ErrVolumeState, id, len(out.Volumes))
	}
	v := out.Volumes[0]
	res := Volume{ID: v.ID, Zone: v.Zone, State: v.State, Attachments: map[string]string{}}
	for _, a := range v.Attachments {
		res.Attachments[a.Instance] = a.State
	}
	return res, nil
}

// AttachVolume implements EC2API.
func (q *QueryEC2) AttachVolume(ctx context.Context, volume, instance, device string) error {
	return q.call(ctx, "AttachVolume", url.Values{"VolumeId": {volume}, "InstanceId": {instance}, "Device": {device}}, nil)
}

// AssociateAddress implements EC2API.
func (q *QueryEC2) AssociateAddress(ctx context.Context, allocation, instance string) error {
	return q.call(ctx, "AssociateAddress", url.Values{"AllocationId": {allocation}, "InstanceId": {instance}, "AllowReassociation": {"true"}}, nil)
}
