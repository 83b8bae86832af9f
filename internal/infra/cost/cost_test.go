package cost

import (
	"errors"
	"strings"
	"testing"
)

func testPrices() *Prices {
	return &Prices{Region: "eu-west-1", Recorded: "test", HoursPerMonth: 730,
		InstanceHour: map[string]float64{"m7g.medium": 0.04}, EBSGBMonth: map[string]float64{"gp3": 0.1},
		IPv4Hour: 0.005, HostedZoneMonth: 0.5, HealthCheckMonth: 0.75, HealthFeatureMonth: 2,
		APIGWPerMillion: 1, CFHTTPSPer10k: 0.01, CFFreeRequests: 10e6, CFFreeGBOut: 1024, CFFreeFunctions: 2e6,
		FreeAlarmMetrics: 10, FreeDashboards: 3, FreeCustomMetrics: 10, FreeLogsGB: 5, AlarmMetricMonth: 0.1, S3GBMonth: 0.02}
}

func TestPrice(t *testing.T) {
	u := Usage{ExpectedRPS: 50, AverageShare: 0.02, APIShare: 0.5, CheckersPerRegion: 1}
	tests := []struct {
		name    string
		res     map[string]Resource
		want    float64
		wantErr error
		detail  string
	}{
		{"instance with root volume", map[string]Resource{"Box": {Type: "AWS::EC2::Instance", Properties: map[string]any{"InstanceType": "m7g.medium",
			"BlockDeviceMappings": []any{map[string]any{"Ebs": map[string]any{"VolumeSize": 10.0, "VolumeType": "gp3"}}}}}}, 730*0.04 + 1, nil, "EBS root gp3 10 GB"},
		{"elastic ip", map[string]Resource{"EIP": {Type: "AWS::EC2::EIP"}}, 3.65, nil, "public IPv4"},
		{"https health check, 3 regions", map[string]Resource{"HC": {Type: "AWS::Route53::HealthCheck", Properties: map[string]any{"HealthCheckConfig": map[string]any{
			"Type": "HTTPS", "Regions": []any{"a", "b", "c"}, "RequestInterval": 30.0}}}}, 2.75, nil, "1 feature"},
		{"fast string-match check", map[string]Resource{"HC": {Type: "AWS::Route53::HealthCheck", Properties: map[string]any{"HealthCheckConfig": map[string]any{
			"Type": "HTTPS_STR_MATCH", "RequestInterval": 10.0}}}}, 0.75 + 3*2, nil, "3 feature"},
		{"alarms beyond the free tier", alarms(12), 0.2, nil, "12 alarm metrics"},
		{"free plumbing", map[string]Resource{"V": {Type: "AWS::EC2::VPC"}, "R": {Type: "AWS::IAM::Role"}, "C": {Type: "Custom::CrossRegionExportWriter"}}, 0, nil, ""},
		{"unknown instance type", map[string]Resource{"Box": {Type: "AWS::EC2::Instance", Properties: map[string]any{"InstanceType": "x9.huge"}}}, 0, ErrUnpriced, "x9.huge"},
		{"NAT gateway is not silently free", map[string]Resource{"Nat": {Type: "AWS::EC2::NatGateway"}}, 0, ErrUnpriced, "NatGateway"},
		{"interface endpoint is not free", map[string]Resource{"E": {Type: "AWS::EC2::VPCEndpoint", Properties: map[string]any{"VpcEndpointType": "Interface"}}}, 0, ErrUnpriced, "interface"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Price([]Template{{Stack: "s", Resources: tc.res}}, testPrices(), u, 44)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.detail) {
					t.Fatalf("err = %v, want %v with %q", err, tc.wantErr, tc.detail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			e.Write(&b)
			if diff := e.Total - tc.want; diff > 0.011 || diff < -0.011 {
				t.Errorf("total %.2f, want %.2f\n%s", e.Total, tc.want, b.String())
			}
			if !strings.Contains(b.String(), tc.detail) {
				t.Errorf("breakdown lacks %q:\n%s", tc.detail, b.String())
			}
			lines := strings.Split(strings.TrimSpace(b.String()), "\n")
			if !strings.HasPrefix(lines[len(lines)-1], "cost: monthly_usd=") || !strings.HasSuffix(lines[len(lines)-1], " budget_usd=44") {
				t.Errorf("last line %q", lines[len(lines)-1])
			}
		})
	}
}

func alarms(n int) map[string]Resource {
	m := map[string]Resource{}
	for i := 0; i < n; i++ {
		m[string(rune('a'+i))] = Resource{Type: "AWS::CloudWatch::Alarm"}
	}
	return m
}

func TestCheck(t *testing.T) {
	e := &Estimate{Total: 50, Budget: 44, Items: []Item{{Name: "EC2", USD: 40}, {Name: "IPv4", USD: 10}}}
	if err := e.Check(); !errors.Is(err, ErrOverBudget) || !strings.Contains(err.Error(), "EC2 40.00") {
		t.Errorf("err = %v", err)
	}
	e.Total = 44
	if err := e.Check(); err != nil {
		t.Errorf("at the budget: %v", err)
	}
}
