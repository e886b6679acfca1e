package auth

import (
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// Rules says, for every Connect procedure of every cairn service, which
// class of callers may make it. TestEveryProcedureHasARule walks the
// service descriptors: a procedure added without a rule fails it.
var Rules = map[string]Class{
	// Masters: the cluster map and membership.
	cairnv1connect.ClusterServiceGetClusterMapProcedure:      WorkerRead,
	cairnv1connect.ClusterServiceWatchClusterMapProcedure:    WorkerRead,
	cairnv1connect.ClusterServiceRegisterWorkerProcedure:     Work,
	cairnv1connect.ClusterServiceHeartbeatProcedure:          Work,
	cairnv1connect.ClusterServiceSetReplicationProcedure:     Operate,
	cairnv1connect.ClusterServiceMaintainWorkerProcedure:     Operate,
	cairnv1connect.ClusterServiceActivateWorkerProcedure:     Operate,
	cairnv1connect.ClusterServiceDecommissionWorkerProcedure: Operate,

	// Masters: the raft group.
	cairnv1connect.OperatorServiceGetStatusProcedure:          Read,
	cairnv1connect.OperatorServiceListRaftPeersProcedure:      Read,
	cairnv1connect.OperatorServiceTransferLeadershipProcedure: Admin,
	cairnv1connect.OperatorServiceJoinClusterProcedure:        Admin,
	cairnv1connect.OperatorServiceRemovePeerProcedure:         Admin,
	cairnv1connect.OperatorServiceSaveSnapshotProcedure:       Admin,

	// Masters: the journal.
	cairnv1connect.EventServiceTailEventsProcedure: Read,
	cairnv1connect.EventServiceAppendNoteProcedure: Operate,

	// Masters: the namespace.
	cairnv1connect.NamespaceServiceCreateFileProcedure:       Write,
	cairnv1connect.NamespaceServiceCompleteFileProcedure:     Write,
	cairnv1connect.NamespaceServiceGetFileProcedure:          WorkerRead,
	cairnv1connect.NamespaceServiceGetFilesProcedure:         WorkerRead,
	cairnv1connect.NamespaceServiceListFilesProcedure:        Read,
	cairnv1connect.NamespaceServiceDeleteFileProcedure:       Write,
	cairnv1connect.NamespaceServiceLoadFileProcedure:         Write,
	cairnv1connect.NamespaceServiceListMountsProcedure:       WorkerRead,
	cairnv1connect.NamespaceServicePersistFileProcedure:      Write,
	cairnv1connect.NamespaceServiceGetUploadMappingProcedure: Read,
	cairnv1connect.NamespaceServiceSetUploadMappingProcedure: Operate,
	// Mounts decide which of the processes' own storage (their file
	// systems, the buckets their AWS credentials reach) token holders can
	// read and write through cairn: an admin's call, like tokens.
	cairnv1connect.NamespaceServiceAddMountProcedure:    Admin,
	cairnv1connect.NamespaceServiceRemoveMountProcedure: Admin,

	// Masters: jobs.
	cairnv1connect.JobServiceStartJobProcedure:       Operate,
	cairnv1connect.JobServiceStopJobProcedure:        Operate,
	cairnv1connect.JobServiceGetJobProcedure:         WorkerRead,
	cairnv1connect.JobServiceListJobsProcedure:       Read,
	cairnv1connect.JobServiceWatchJobProcedure:       Read,
	cairnv1connect.JobServiceGetSettingsProcedure:    Read,
	cairnv1connect.JobServiceUpdateSettingProcedure:  Operate,
	cairnv1connect.JobServiceClearStaleProcedure:     Operate,
	cairnv1connect.JobServiceStopClearStaleProcedure: Operate,

	// Masters: workers' leases.
	cairnv1connect.LeaseServiceLeaseProcedure:       Work,
	cairnv1connect.LeaseServiceRenewProcedure:       Work,
	cairnv1connect.LeaseServiceReportProcedure:      Work,
	cairnv1connect.LeaseServiceReportBatchProcedure: Work,

	// Masters: tokens.
	cairnv1connect.AuthServiceCreateTokenProcedure: Admin,
	cairnv1connect.AuthServiceListTokensProcedure:  Admin,
	cairnv1connect.AuthServiceRevokeTokenProcedure: Admin,
	cairnv1connect.AuthServiceWhoAmIProcedure:      Any,
	cairnv1connect.AuthServiceWatchTokensProcedure: Work,

	// Workers: cached data.
	cairnv1connect.DataServiceReadProcedure:                   WorkerRead,
	cairnv1connect.DataServiceStatProcedure:                   WorkerRead,
	cairnv1connect.DataServiceWriteProcedure:                  WorkerWrite,
	cairnv1connect.DataServiceDeleteProcedure:                 WorkerWrite,
	cairnv1connect.DataServiceStartMultipartWriteProcedure:    Write,
	cairnv1connect.DataServiceWritePartProcedure:              Write,
	cairnv1connect.DataServiceCompleteMultipartWriteProcedure: Write,
	cairnv1connect.DataServiceAbortMultipartWriteProcedure:    Write,
	cairnv1connect.DataServiceTransferProcedure:               Work,
}

// Routes says which class of callers may use each plain HTTP route of a
// cairn process (by path; Check applies it to every method).
var Routes = map[string]Class{
	// Masters: the seed's REST cache API (clear-stale).
	"/api/v1/cache": Operate,
	// Workers: bulk reads of cached data, and bulk rebalance copies.
	"/data/v1/read":  WorkerRead,
	"/data/v1/write": Work,
	// Every process.
	"/metrics":      Any,
	"/debug/pprof/": Admin,
}

// Lookup returns the class of a procedure or route path, and whether it has
// one. A path under "/debug/pprof/" takes that route's class.
func Lookup(path string) (Class, bool) {
	if c, ok := Rules[path]; ok {
		return c, true
	}
	if c, ok := Routes[path]; ok {
		return c, true
	}
	if len(path) > len("/debug/pprof/") && path[:len("/debug/pprof/")] == "/debug/pprof/" {
		return Routes["/debug/pprof/"], true
	}
	return 0, false
}
