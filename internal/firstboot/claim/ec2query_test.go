package claim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Recorded shapes of EC2's 2016-11-15 Query API answers (from EC2's API reference examples).
const describeVolumesXML = `<?xml version="1.0" encoding="UTF-8"?>
<DescribeVolumesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
  <volumeSet>
    <item>
      <volumeId>vol-1234567890abcdef0</volumeId>
      <size>20</size>
      <snapshotId/>
      <availabilityZone>eu-west-1a</availabilityZone>
      <status>in-use</status>
      <createTime>2026-11-01T10:00:00.000Z</createTime>
      <attachmentSet>
        <item>
          <volumeId>vol-1234567890abcdef0</volumeId>
          <instanceId>i-0old</instanceId>
          <device>/dev/sdf</device>
          <status>detaching</status>
          <attachTime>2026-11-01T10:00:00.000Z</attachTime>
          <deleteOnTermination>false</deleteOnTermination>
        </item>
      </attachmentSet>
      <volumeType>gp3</volumeType>
      <encrypted>true</encrypted>
    </item>
  </volumeSet>
</DescribeVolumesResponse>`

const errorXML = `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>VolumeInUse</Code><Message>vol-1234567890abcdef0 is already attached to an instance</Message></Error></Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>`

func TestQueryEC2(t *testing.T) {
	var got []url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		got = append(got, form)
		if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDTEST/") || !strings.Contains(r.Header.Get("Authorization"), "/eu-west-1/ec2/aws4_request") {
			http.Error(w, "unsigned", http.StatusForbidden)
			return
		}
		switch form.Get("Action") {
		case "DescribeVolumes":
			io.WriteString(w, describeVolumesXML)
		case "AttachVolume":
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, errorXML)
		default:
			io.WriteString(w, `<AssociateAddressResponse><return>true</return><associationId>eipassoc-1</associationId></AssociateAddressResponse>`)
		}
	}))
	defer srv.Close()
	q := &QueryEC2{Region: "eu-west-1", Endpoint: srv.URL, Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""))}
	ctx := context.Background()
	v, err := q.DescribeVolume(ctx, "vol-1234567890abcdef0")
	if err != nil || v.Zone != "eu-west-1a" || v.State != "in-use" || v.Attachments["i-0old"] != "detaching" {
		t.Fatalf("DescribeVolume = %+v, %v", v, err)
	}
	err = q.AttachVolume(ctx, "vol-1234567890abcdef0", "i-0new", "/dev/sdf")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "VolumeInUse" || !retryableAttach(err) {
		t.Fatalf("AttachVolume = %v, want VolumeInUse", err)
	}
	if err := q.AssociateAddress(ctx, "eipalloc-1", "i-0new"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Action=DescribeVolumes&Version=2016-11-15&VolumeId.1=vol-1234567890abcdef0",
		"Action=AttachVolume&Device=%2Fdev%2Fsdf&InstanceId=i-0new&Version=2016-11-15&VolumeId=vol-1234567890abcdef0",
		"Action=AssociateAddress&AllocationId=eipalloc-1&AllowReassociation=true&InstanceId=i-0new&Version=2016-11-15",
	}
	for i, w := range want {
		if got[i].Encode() != w {
			t.Errorf("request %d = %s, want %s", i, got[i].Encode(), w)
		}
	}
}
