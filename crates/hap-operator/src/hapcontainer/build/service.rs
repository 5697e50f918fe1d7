//! The Service `<name>-hapservice` (Jupyter on 8888, the Spark UI on 4040, NodePort by default as in
//! the original) and, with Spark executors, the headless Service that makes the driver reachable.

use hap_api::HapContainer;
use hap_api::hapcontainer::ServiceSpec;
use k8s_openapi::api::core::v1::{Service, ServiceSpec as CoreServiceSpec};
use kube::ResourceExt;

use super::parts::meta;
use crate::hapcontainer::names::{
    self, BLOCK_MANAGER_PORT, DRIVER_PORT, JUPYTER_PORT, SPARK_UI_PORT,
};
use crate::pipeline::objects::service_port;

pub fn workspace(hc: &HapContainer) -> Service {
    let name = hc.name_any();
    let spec: ServiceSpec = hc.spec.service.clone().unwrap_or_default();
    Service {
        metadata: meta(hc, &names::service(&name)),
        spec: Some(CoreServiceSpec {
            type_: Some(spec.type_.as_str().into()),
            selector: Some(names::pod_selector(&name)),
            ports: Some(vec![
                service_port("jupyter", JUPYTER_PORT, spec.jupyter_node_port),
                service_port("spark-ui", SPARK_UI_PORT, spec.spark_ui_node_port),
            ]),
            ..Default::default()
        }),
        status: None,
    }
}

pub fn spark_driver(hc: &HapContainer) -> Service {
    let name = hc.name_any();
    Service {
        metadata: meta(hc, &names::spark_driver_service(&name)),
        spec: Some(CoreServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(names::pod_selector(&name)),
            // Executors connect while the driver starts, before Jupyter is ready.
            publish_not_ready_addresses: Some(true),
            ports: Some(vec![
                service_port("spark-driver", DRIVER_PORT, None),
                service_port("spark-blockmgr", BLOCK_MANAGER_PORT, None),
            ]),
            ..Default::default()
        }),
        status: None,
    }
}
