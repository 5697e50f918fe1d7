package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"
)

// stopPodsCommand stops and removes every pod sandbox through the CRI, so that containerd
// undoes what it set up for them (CNI networking, mounts) before the cluster is torn down.
func stopPodsCommand() *cobra.Command {
	var endpoint string
	cmd := &cobra.Command{
		Use:   "stop-pods",
		Short: "Stop and remove every pod sandbox of a CRI runtime",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			rs, err := remote.NewRemoteRuntimeService(ctx, endpoint, 30*time.Second, nil, false)
			if err != nil {
				return err
			}
			pods, err := rs.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{})
			if err != nil {
				return err
			}
			for _, p := range pods {
				if err := rs.StopPodSandbox(ctx, p.Id); err != nil {
					return fmt.Errorf("stopping %s/%s: %w", p.Metadata.Namespace, p.Metadata.Name, err)
				}
				if err := rs.RemovePodSandbox(ctx, p.Id); err != nil {
					return fmt.Errorf("removing %s/%s: %w", p.Metadata.Namespace, p.Metadata.Name, err)
				}
			}
			fmt.Printf("stopped %d pods\n", len(pods))
			return nil
		},
	}
	cmd.Flags().StringVar(&endpoint, "runtime-endpoint", "", "CRI socket, e.g. unix:///run/containerd/containerd.sock")
	return cmd
}
