package backup

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// The metric the backup-failed alarm watches (infra/observability.go): Sum of
// Zmanim/Backup BackupSucceeded, dimension Env, below 1 over a day alarms (missing data breaches).
const (
	MetricNamespace = "Zmanim/Backup"
	MetricSucceeded = "BackupSucceeded"
	MetricDimension = "Env"
)

// MetricsAPI is the CloudWatch call the job makes (cloudwatch.Client satisfies it).
type MetricsAPI interface {
	// PutMetricData records data points; it returns once CloudWatch accepted them.
	PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
}

var _ MetricsAPI = (*cloudwatch.Client)(nil)

// putSucceeded records one good backup: BackupSucceeded=1 for the environment.
func (j *Job) putSucceeded(ctx context.Context) error {
	if j.Metrics == nil {
		return nil
	}
	_, err := j.Metrics.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{
		Namespace: aws.String(MetricNamespace),
		MetricData: []cwtypes.MetricDatum{{
			MetricName: aws.String(MetricSucceeded),
			Dimensions: []cwtypes.Dimension{{Name: aws.String(MetricDimension), Value: aws.String(j.Env)}},
			Value:      aws.Float64(1),
			Unit:       cwtypes.StandardUnitCount,
			// No Timestamp: CloudWatch stamps the time it receives the point (and kumo's JSON
			// decoder, checked on v0.33.1, refuses the SDK's numeric timestamps).
		}},
	})
	if err != nil {
		// The snapshot is saved, but without the metric the alarm fires tomorrow: fail the
		// job now so the failure mail says why.
		return fmt.Errorf("backup saved, but putting %s %s (Env=%s) failed: %w", MetricNamespace, MetricSucceeded, j.Env, err)
	}
	j.logf("metric %s %s=1 (Env=%s) put", MetricNamespace, MetricSucceeded, j.Env)
	return nil
}
