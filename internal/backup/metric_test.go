package backup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/shtetl/zmanim-ops/internal/testenv"
)

type fakeMetrics struct {
	got []*cloudwatch.PutMetricDataInput
	err error
}

func (f *fakeMetrics) PutMetricData(_ context.Context, in *cloudwatch.PutMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	f.got = append(f.got, in)
	return &cloudwatch.PutMetricDataOutput{}, f.err
}

// The backup-failed alarm watches Zmanim/Backup BackupSucceeded (Env): before, nothing put it,
// so the alarm was always in alarm and a real failure looked normal.
func TestBackupSucceededMetric(t *testing.T) {
	t.Parallel()
	m := &fakeMetrics{}
	j := &Job{Metrics: m, Env: "prod", Log: &strings.Builder{}}
	if err := j.putSucceeded(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(m.got) != 1 {
		t.Fatalf("%d puts, want 1", len(m.got))
	}
	in := m.got[0]
	d := in.MetricData[0]
	if aws.ToString(in.Namespace) != "Zmanim/Backup" || aws.ToString(d.MetricName) != "BackupSucceeded" || aws.ToFloat64(d.Value) != 1 ||
		aws.ToString(d.Dimensions[0].Name) != "Env" || aws.ToString(d.Dimensions[0].Value) != "prod" {
		t.Fatalf("put %+v %+v", in, d)
	}
	m.err = errors.New("throttled")
	if err := j.putSucceeded(context.Background()); err == nil || !strings.Contains(err.Error(), "BackupSucceeded") {
		t.Fatalf("a failed put must fail the job naming the metric: %v", err)
	}
}

// The same put against kumo's CloudWatch, read back with ListMetrics.
func TestBackupSucceededMetricKumo(t *testing.T) {
	endpoint := testenv.Require(t, testenv.AWSEndpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("eu-west-1"),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		t.Fatal(err)
	}
	cw := cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(endpoint) })
	env := fmt.Sprintf("metric-test-%d", time.Now().UnixNano())
	j := &Job{Metrics: cw, Env: env, Log: &strings.Builder{}}
	if err := j.putSucceeded(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := cw.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String(MetricNamespace), MetricName: aws.String(MetricSucceeded),
		Dimensions: []cwtypes.DimensionFilter{{Name: aws.String(MetricDimension), Value: aws.String(env)}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Metrics) != 1 {
		t.Fatalf("ListMetrics found %d metrics for Env=%s, want 1", len(out.Metrics), env)
	}
}
