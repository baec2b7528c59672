package strategy

import (
	"fmt"
	"path"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// PersistentVolumes and PersistentVolumeClaims.

const betaStorageClassAnnotation = "volume.beta.kubernetes.io/storage-class"

func init() {
	register(v1.SchemeGroupVersion.WithKind("PersistentVolume"), &kind[*v1.PersistentVolume]{
		clusterScoped: true,
		defaults:      defaultPV,
		prepareCreate: func(pv *v1.PersistentVolume) {
			t := now()
			pv.Status = v1.PersistentVolumeStatus{Phase: v1.VolumePending, LastPhaseTransitionTime: &t}
		},
		prepareUpdate: func(pv, old *v1.PersistentVolume) {
			pv.Status = old.Status
		},
		prepareStatus: func(pv, old *v1.PersistentVolume) {
			pv.Spec = old.Spec
			if pv.Status.Phase != old.Status.Phase {
				t := now()
				pv.Status.LastPhaseTransitionTime = &t
			}
		},
		validate: validatePV,
		validateUpdate: func(pv, old *v1.PersistentVolume) field.ErrorList {
			allErrs := validatePV(pv)
			newSrc := pv.Spec.PersistentVolumeSource
			if old.Spec.CSI != nil && old.Spec.CSI.ControllerExpandSecretRef == nil && newSrc.CSI != nil && newSrc.CSI.ControllerExpandSecretRef != nil {
				newSrc = *newSrc.DeepCopy()
				newSrc.CSI.ControllerExpandSecretRef = nil
			}
			if !apiequality.Semantic.DeepEqual(newSrc, old.Spec.PersistentVolumeSource) {
				allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "persistentvolumesource"),
					"spec.persistentvolumesource is immutable after creation\n"+specDiff(old.Spec.PersistentVolumeSource, newSrc)))
			}
			allErrs = append(allErrs, validateImmutable(pv.Spec.VolumeMode, old.Spec.VolumeMode, field.NewPath("volumeMode"))...)
			if old.Spec.NodeAffinity != nil && !apiequality.Semantic.DeepEqual(pv.Spec.NodeAffinity, old.Spec.NodeAffinity) {
				allErrs = append(allErrs, field.Invalid(field.NewPath("nodeAffinity"), pv.Spec.NodeAffinity, fieldImmutableErrorMsg+", except for updating from beta label to GA"))
			}
			return allErrs
		},
		validateStatus: func(pv, old *v1.PersistentVolume) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&pv.ObjectMeta, &old.ObjectMeta)
			if pv.ResourceVersion == "" {
				allErrs = append(allErrs, field.Required(field.NewPath("resourceVersion"), ""))
			}
			return allErrs
		},
		fields: func(pv *v1.PersistentVolume, set fields.Set) {
			set["name"] = pv.Name // legacy field label
		},
	})

	register(v1.SchemeGroupVersion.WithKind("PersistentVolumeClaim"), &kind[*v1.PersistentVolumeClaim]{
		defaults: func(pvc *v1.PersistentVolumeClaim) {
			if pvc.Status.Phase == "" {
				pvc.Status.Phase = v1.ClaimPending
			}
			defaultPVCSpec(&pvc.Spec)
			roundResourceList(pvc.Status.Capacity)
			roundResourceList(pvc.Status.AllocatedResources)
		},
		prepareCreate: func(pvc *v1.PersistentVolumeClaim) {
			pvc.Status = v1.PersistentVolumeClaimStatus{Phase: v1.ClaimPending}
		},
		prepareUpdate: func(pvc, old *v1.PersistentVolumeClaim) {
			pvc.Status = old.Status
		},
		prepareStatus: func(pvc, old *v1.PersistentVolumeClaim) {
			pvc.Spec = old.Spec
		},
		validate:       validatePVC,
		validateUpdate: validatePVCUpdate,
		validateStatus: func(pvc, old *v1.PersistentVolumeClaim) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&pvc.ObjectMeta, &old.ObjectMeta)
			if pvc.ResourceVersion == "" {
				allErrs = append(allErrs, field.Required(field.NewPath("resourceVersion"), ""))
			}
			if len(pvc.Spec.AccessModes) == 0 {
				allErrs = append(allErrs, field.Required(field.NewPath("Spec", "accessModes"), ""))
			}
			for _, r := range sortedResourceNames(pvc.Status.Capacity) {
				allErrs = append(allErrs, validateBasicResource(pvc.Status.Capacity[r], field.NewPath("status", "capacity").Key(string(r)))...)
			}
			return allErrs
		},
		fields: func(pvc *v1.PersistentVolumeClaim, set fields.Set) {
			set["name"] = pvc.Name // legacy field label
		},
	})
}

func defaultPV(pv *v1.PersistentVolume) {
	if pv.Status.Phase == "" {
		pv.Status.Phase = v1.VolumePending
	}
	if pv.Spec.PersistentVolumeReclaimPolicy == "" {
		pv.Spec.PersistentVolumeReclaimPolicy = v1.PersistentVolumeReclaimRetain
	}
	if pv.Spec.VolumeMode == nil {
		pv.Spec.VolumeMode = ptr.To(v1.PersistentVolumeFilesystem)
	}
	roundResourceList(pv.Spec.Capacity)
	s := &pv.Spec.PersistentVolumeSource
	if s.HostPath != nil && s.HostPath.Type == nil {
		s.HostPath.Type = ptr.To(v1.HostPathUnset)
	}
	if s.RBD != nil {
		defaultRBD(&s.RBD.RBDPool, &s.RBD.RadosUser, &s.RBD.Keyring)
	}
	if s.ISCSI != nil && s.ISCSI.ISCSIInterface == "" {
		s.ISCSI.ISCSIInterface = "default"
	}
	if s.AzureDisk != nil {
		defaultAzureDisk(s.AzureDisk)
	}
	if s.ScaleIO != nil {
		defaultScaleIO(&s.ScaleIO.StorageMode, &s.ScaleIO.FSType)
	}
}

var (
	supportedAccessModes   = sets.New(v1.ReadWriteOnce, v1.ReadOnlyMany, v1.ReadWriteMany, v1.ReadWriteOncePod)
	supportedReclaimPolicy = sets.New(v1.PersistentVolumeReclaimDelete, v1.PersistentVolumeReclaimRecycle, v1.PersistentVolumeReclaimRetain)
	supportedVolumeModes   = sets.New(v1.PersistentVolumeBlock, v1.PersistentVolumeFilesystem)
)

func validateAccessModes(modes []v1.PersistentVolumeAccessMode, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	rwop, other := false, false
	for _, m := range modes {
		if !supportedAccessModes.Has(m) {
			allErrs = append(allErrs, field.NotSupported(fldPath, m, sets.List(supportedAccessModes)))
		}
		if m == v1.ReadWriteOncePod {
			rwop = true
		} else if supportedAccessModes.Has(m) {
			other = true
		}
	}
	if rwop && other {
		allErrs = append(allErrs, field.Forbidden(fldPath, "may not use ReadWriteOncePod with other access modes"))
	}
	return allErrs
}

func validatePV(pv *v1.PersistentVolume) field.ErrorList {
	allErrs := validateObjectMeta(&pv.ObjectMeta, false, nameIsDNSSubdomain)
	spec := &pv.Spec
	if len(spec.AccessModes) == 0 {
		allErrs = append(allErrs, field.Required(specPath.Child("accessModes"), ""))
	}
	allErrs = append(allErrs, validateAccessModes(spec.AccessModes, specPath.Child("accessModes"))...)
	if len(spec.Capacity) == 0 {
		allErrs = append(allErrs, field.Required(specPath.Child("capacity"), ""))
	}
	if _, ok := spec.Capacity[v1.ResourceStorage]; !ok || len(spec.Capacity) > 1 {
		allErrs = append(allErrs, field.NotSupported(specPath.Child("capacity"), spec.Capacity, []v1.ResourceName{v1.ResourceStorage}))
	}
	for _, r := range sortedResourceNames(spec.Capacity) {
		p := specPath.Child("capacity").Key(string(r))
		allErrs = append(allErrs, validateBasicResource(spec.Capacity[r], p)...)
		allErrs = append(allErrs, validatePositiveQuantityValue(spec.Capacity[r], p)...)
	}
	if spec.PersistentVolumeReclaimPolicy != "" && !supportedReclaimPolicy.Has(spec.PersistentVolumeReclaimPolicy) {
		allErrs = append(allErrs, field.NotSupported(specPath.Child("persistentVolumeReclaimPolicy"), spec.PersistentVolumeReclaimPolicy, sets.List(supportedReclaimPolicy)))
	}
	nodeAffinity := false
	if spec.NodeAffinity != nil {
		nodeAffinity = true
		if spec.NodeAffinity.Required != nil {
			allErrs = append(allErrs, validateNodeSelector(spec.NodeAffinity.Required, false, specPath.Child("nodeAffinity", "required"))...)
		} else {
			allErrs = append(allErrs, field.Required(specPath.Child("nodeAffinity", "required"), "must specify required node constraints"))
		}
	}
	allErrs = append(allErrs, validatePVSource(&spec.PersistentVolumeSource, nodeAffinity)...)
	if spec.HostPath != nil && path.Clean(spec.HostPath.Path) == "/" && spec.PersistentVolumeReclaimPolicy == v1.PersistentVolumeReclaimRecycle {
		allErrs = append(allErrs, field.Forbidden(specPath.Child("persistentVolumeReclaimPolicy"), "may not be 'recycle' for a hostPath mount of '/'"))
	}
	if spec.StorageClassName != "" {
		allErrs = append(allErrs, validateName(spec.StorageClassName, nameIsDNSSubdomain, specPath.Child("storageClassName"))...)
	}
	if spec.VolumeMode != nil && !supportedVolumeModes.Has(*spec.VolumeMode) {
		allErrs = append(allErrs, field.NotSupported(specPath.Child("volumeMode"), *spec.VolumeMode, sets.List(supportedVolumeModes)))
	}
	if c := spec.VolumeAttributesClassName; c != nil {
		if *c == "" {
			allErrs = append(allErrs, field.Required(specPath.Child("volumeAttributesClassName"), "an empty string is disallowed"))
		} else {
			allErrs = append(allErrs, validateName(*c, nameIsDNSSubdomain, specPath.Child("volumeAttributesClassName"))...)
		}
		if spec.CSI == nil {
			allErrs = append(allErrs, field.Required(specPath.Child("csi"), "has to be specified when using volumeAttributesClassName"))
		}
	}
	return allErrs
}

// validatePVSource checks that exactly one volume source is set and its
// required fields.
func validatePVSource(s *v1.PersistentVolumeSource, nodeAffinity bool) field.ErrorList {
	sources := []volumeSourceField{
		{"hostPath", s.HostPath != nil, func(p *field.Path) field.ErrorList { return validateHostPath(s.HostPath, p) }},
		{"gcePersistentDisk", s.GCEPersistentDisk != nil, func(p *field.Path) field.ErrorList { return requireStrings(p, "pdName", s.GCEPersistentDisk.PDName) }},
		{"awsElasticBlockStore", s.AWSElasticBlockStore != nil, func(p *field.Path) field.ErrorList {
			return requireStrings(p, "volumeID", s.AWSElasticBlockStore.VolumeID)
		}},
		{"glusterfs", s.Glusterfs != nil, func(p *field.Path) field.ErrorList {
			return requireStrings(p, "endpoints", s.Glusterfs.EndpointsName, "path", s.Glusterfs.Path)
		}},
		{"flocker", s.Flocker != nil, func(p *field.Path) field.ErrorList { return nil }},
		{"nfs", s.NFS != nil, func(p *field.Path) field.ErrorList {
			errs := requireStrings(p, "server", s.NFS.Server, "path", s.NFS.Path)
			if !path.IsAbs(s.NFS.Path) {
				errs = append(errs, field.Invalid(p.Child("path"), s.NFS.Path, "must be an absolute path"))
			}
			return errs
		}},
		{"rbd", s.RBD != nil, func(p *field.Path) field.ErrorList { return requireStrings(p, "image", s.RBD.RBDImage) }},
		{"quobyte", s.Quobyte != nil, func(p *field.Path) field.ErrorList { return requireStrings(p, "volume", s.Quobyte.Volume) }},
		{"cephFS", s.CephFS != nil, func(p *field.Path) field.ErrorList { return nil }},
		{"iscsi", s.ISCSI != nil, func(p *field.Path) field.ErrorList {
			return requireStrings(p, "targetPortal", s.ISCSI.TargetPortal, "iqn", s.ISCSI.IQN)
		}},
		{"cinder", s.Cinder != nil, func(p *field.Path) field.ErrorList { return requireStrings(p, "volumeID", s.Cinder.VolumeID) }},
		{"fc", s.FC != nil, func(p *field.Path) field.ErrorList { return nil }},
		{"flexVolume", s.FlexVolume != nil, func(p *field.Path) field.ErrorList { return requireStrings(p, "driver", s.FlexVolume.Driver) }},
		{"azureFile", s.AzureFile != nil, func(p *field.Path) field.ErrorList {
			return requireStrings(p, "secretName", s.AzureFile.SecretName, "shareName", s.AzureFile.ShareName)
		}},
		{"vsphereVolume", s.VsphereVolume != nil, func(p *field.Path) field.ErrorList {
			return requireStrings(p, "volumePath", s.VsphereVolume.VolumePath)
		}},
		{"photonPersistentDisk", s.PhotonPersistentDisk != nil, func(p *field.Path) field.ErrorList { return requireStrings(p, "pdID", s.PhotonPersistentDisk.PdID) }},
		{"portworxVolume", s.PortworxVolume != nil, func(p *field.Path) field.ErrorList { return requireStrings(p, "volumeID", s.PortworxVolume.VolumeID) }},
		{"azureDisk", s.AzureDisk != nil, func(p *field.Path) field.ErrorList {
			return requireStrings(p, "diskName", s.AzureDisk.DiskName, "diskURI", s.AzureDisk.DataDiskURI)
		}},
		{"scaleIO", s.ScaleIO != nil, func(p *field.Path) field.ErrorList {
			return requireStrings(p, "gateway", s.ScaleIO.Gateway, "system", s.ScaleIO.System)
		}},
		{"local", s.Local != nil, func(p *field.Path) field.ErrorList {
			if s.Local.Path == "" {
				return field.ErrorList{field.Required(p.Child("path"), "")}
			}
			errs := validatePathNoBacksteps(s.Local.Path, p.Child("path"))
			if !nodeAffinity {
				errs = append(errs, field.Required(specPath.Child("nodeAffinity"), "Local volume requires node affinity"))
			}
			return errs
		}},
		{"storageos", s.StorageOS != nil, func(p *field.Path) field.ErrorList { return requireStrings(p, "volumeName", s.StorageOS.VolumeName) }},
		{"csi", s.CSI != nil, func(p *field.Path) field.ErrorList {
			errs := validateCSIDriverName(s.CSI.Driver, p.Child("driver"))
			if s.CSI.VolumeHandle == "" {
				errs = append(errs, field.Required(p.Child("volumeHandle"), ""))
			}
			return errs
		}},
	}
	var allErrs field.ErrorList
	num := 0
	for _, src := range sources {
		if !src.set {
			continue
		}
		if num > 0 {
			allErrs = append(allErrs, field.Forbidden(specPath.Child(src.name), "may not specify more than 1 volume type"))
			continue
		}
		num++
		allErrs = append(allErrs, src.validate(specPath.Child(src.name))...)
	}
	if num == 0 {
		allErrs = append(allErrs, field.Required(specPath, "must specify a volume type"))
	}
	return allErrs
}

func validatePVC(pvc *v1.PersistentVolumeClaim) field.ErrorList {
	allErrs := validateObjectMeta(&pvc.ObjectMeta, true, nameIsDNSSubdomain)
	return append(allErrs, validatePVCSpec(&pvc.Spec, specPath)...)
}

// validatePVCSpec checks a claim spec: access modes, a positive storage
// request, class and volume mode, data sources.
func validatePVCSpec(spec *v1.PersistentVolumeClaimSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(spec.AccessModes) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("accessModes"), "at least 1 access mode is required"))
	}
	if spec.Selector != nil {
		allErrs = append(allErrs, validateLabelSelector(spec.Selector, fldPath.Child("selector"))...)
	}
	allErrs = append(allErrs, validateAccessModes(spec.AccessModes, fldPath.Child("accessModes"))...)
	storagePath := fldPath.Child("resources").Key(string(v1.ResourceStorage))
	if storage, ok := spec.Resources.Requests[v1.ResourceStorage]; !ok {
		allErrs = append(allErrs, field.Required(storagePath, ""))
	} else if errs := validatePositiveQuantityValue(storage, storagePath); len(errs) > 0 {
		allErrs = append(allErrs, errs...)
	} else {
		allErrs = append(allErrs, validateResourceQuantityValue(v1.ResourceStorage, storage, storagePath)...)
	}
	if spec.StorageClassName != nil && *spec.StorageClassName != "" {
		allErrs = append(allErrs, validateName(*spec.StorageClassName, nameIsDNSSubdomain, fldPath.Child("storageClassName"))...)
	}
	if spec.VolumeMode != nil && !supportedVolumeModes.Has(*spec.VolumeMode) {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("volumeMode"), *spec.VolumeMode, sets.List(supportedVolumeModes)))
	}
	if ds := spec.DataSource; ds != nil {
		allErrs = append(allErrs, validateDataSource(ds.APIGroup, ds.Kind, ds.Name, fldPath.Child("dataSource"))...)
	}
	if ds := spec.DataSourceRef; ds != nil {
		p := fldPath.Child("dataSourceRef")
		allErrs = append(allErrs, validateDataSource(ds.APIGroup, ds.Kind, ds.Name, p)...)
		if ds.Namespace != nil && *ds.Namespace != "" {
			allErrs = append(allErrs, validateName(*ds.Namespace, nameIsDNSLabel, p.Child("namespace"))...)
		}
	}
	if ref := spec.DataSourceRef; ref != nil && ref.Namespace != nil && *ref.Namespace != "" {
		if spec.DataSource != nil {
			allErrs = append(allErrs, field.Invalid(fldPath, fldPath.Child("dataSource"), "may not be specified when dataSourceRef.namespace is specified"))
		}
	} else if spec.DataSource != nil && spec.DataSourceRef != nil {
		ds, ref := spec.DataSource, spec.DataSourceRef
		if !apiequality.Semantic.DeepEqual(ds.APIGroup, ref.APIGroup) || ds.Kind != ref.Kind || ds.Name != ref.Name {
			allErrs = append(allErrs, field.Invalid(fldPath, fldPath.Child("dataSource"), "must match dataSourceRef"))
		}
	}
	if c := spec.VolumeAttributesClassName; c != nil && *c != "" {
		allErrs = append(allErrs, validateName(*c, nameIsDNSSubdomain, fldPath.Child("volumeAttributesClassName"))...)
	}
	return allErrs
}

func validateDataSource(apiGroup *string, kind, name string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), ""))
	}
	if kind == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("kind"), ""))
	}
	group := ptr.Deref(apiGroup, "")
	if group == "" && kind != "PersistentVolumeClaim" {
		allErrs = append(allErrs, field.Invalid(fldPath, kind, "must be 'PersistentVolumeClaim' when referencing the default apiGroup"))
	}
	if group != "" {
		for _, msg := range validation.IsDNS1123Subdomain(group) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("apiGroup"), group, msg))
		}
	}
	return allErrs
}

// validatePVCUpdate: a claim's spec is immutable except the requested
// storage of a bound claim (which may grow), the volume name (set once by
// the binder) and the volume attributes class.
func validatePVCUpdate(pvc, old *v1.PersistentVolumeClaim) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&pvc.ObjectMeta, &old.ObjectMeta)
	allErrs = append(allErrs, validatePVC(pvc)...)
	newSpec, oldSpec := pvc.Spec.DeepCopy(), old.Spec.DeepCopy()
	if old.Spec.VolumeName == "" {
		oldSpec.VolumeName = newSpec.VolumeName
	}
	oldAnn, hadAnn := old.Annotations[betaStorageClassAnnotation]
	newAnn, hasAnn := pvc.Annotations[betaStorageClassAnnotation]
	if hadAnn && old.Spec.StorageClassName == nil && pvc.Spec.StorageClassName != nil && *pvc.Spec.StorageClassName == oldAnn && (!hasAnn || newAnn == oldAnn) {
		newSpec.StorageClassName = nil
	} else {
		if newAnn != oldAnn {
			allErrs = append(allErrs, field.Invalid(metadataPath.Child("annotations", betaStorageClassAnnotation), newAnn, fieldImmutableErrorMsg))
		}
		if pvc.Spec.StorageClassName != nil && old.Spec.StorageClassName == nil && (!hadAnn || *pvc.Spec.StorageClassName == oldAnn) {
			newSpec.StorageClassName = oldSpec.StorageClassName
		}
	}
	if pvc.Status.Phase == v1.ClaimBound && newSpec.Resources.Requests != nil {
		newSpec.Resources.Requests[v1.ResourceStorage] = old.Spec.Resources.Requests[v1.ResourceStorage]
	}
	if pvc.Status.Phase == v1.ClaimBound && newSpec.VolumeAttributesClassName != nil {
		newSpec.VolumeAttributesClassName = oldSpec.VolumeAttributesClassName
	}
	if !apiequality.Semantic.DeepEqual(newSpec, oldSpec) {
		allErrs = append(allErrs, field.Forbidden(specPath, fmt.Sprintf("spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n%v", specDiff(oldSpec, newSpec))))
	}
	oldSize := old.Spec.Resources.Requests[v1.ResourceStorage]
	newSize := pvc.Spec.Resources.Requests[v1.ResourceStorage]
	statusSize := old.Status.Capacity[v1.ResourceStorage]
	if newSize.Cmp(oldSize) < 0 && newSize.Cmp(statusSize) <= 0 {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "resources", "requests", "storage"), "field can not be less than status.capacity"))
	}
	allErrs = append(allErrs, validateImmutable(pvc.Spec.VolumeMode, old.Spec.VolumeMode, field.NewPath("volumeMode"))...)
	if old.Spec.VolumeAttributesClassName != nil && !apiequality.Semantic.DeepEqual(old.Spec.VolumeAttributesClassName, pvc.Spec.VolumeAttributesClassName) {
		if pvc.Spec.VolumeAttributesClassName == nil {
			allErrs = append(allErrs, field.Forbidden(specPath.Child("volumeAttributesClassName"), "update from non-nil value to nil is forbidden"))
		} else if *pvc.Spec.VolumeAttributesClassName == "" {
			allErrs = append(allErrs, field.Forbidden(specPath.Child("volumeAttributesClassName"), "update from non-nil value to an empty string is forbidden"))
		}
	}
	return allErrs
}
