package strategy

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// certificates.k8s.io/v1 CertificateSigningRequests. The requesting user's
// name, uid, groups and extra (spec.username, ...) come from the request's
// authentication, which the server fills on create; the approval
// subresource is the server's too.

const legacyUnknownSignerName = "kubernetes.io/legacy-unknown"

var validKeyUsages = sets.New(
	certificatesv1.UsageSigning, certificatesv1.UsageDigitalSignature, certificatesv1.UsageContentCommitment,
	certificatesv1.UsageKeyEncipherment, certificatesv1.UsageKeyAgreement, certificatesv1.UsageDataEncipherment,
	certificatesv1.UsageCertSign, certificatesv1.UsageCRLSign, certificatesv1.UsageEncipherOnly,
	certificatesv1.UsageDecipherOnly, certificatesv1.UsageAny, certificatesv1.UsageServerAuth,
	certificatesv1.UsageClientAuth, certificatesv1.UsageCodeSigning, certificatesv1.UsageEmailProtection,
	certificatesv1.UsageSMIME, certificatesv1.UsageIPsecEndSystem, certificatesv1.UsageIPsecTunnel,
	certificatesv1.UsageIPsecUser, certificatesv1.UsageTimestamping, certificatesv1.UsageOCSPSigning,
	certificatesv1.UsageMicrosoftSGC, certificatesv1.UsageNetscapeSGC,
)

func init() {
	register(certificatesv1.SchemeGroupVersion.WithKind("CertificateSigningRequest"), &kind[*certificatesv1.CertificateSigningRequest]{
		clusterScoped: true,
		defaults: func(csr *certificatesv1.CertificateSigningRequest) {
			for i := range csr.Status.Conditions {
				if csr.Status.Conditions[i].Status == "" {
					csr.Status.Conditions[i].Status = v1.ConditionTrue
				}
			}
		},
		prepareCreate: func(csr *certificatesv1.CertificateSigningRequest) {
			csr.Status = certificatesv1.CertificateSigningRequestStatus{}
		},
		prepareUpdate: func(csr, old *certificatesv1.CertificateSigningRequest) {
			csr.Spec = old.Spec
			csr.Status = old.Status
		},
		prepareStatus: prepareCSRStatusUpdate,
		validate:      validateCSR,
		validateUpdate: func(csr, old *certificatesv1.CertificateSigningRequest) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&csr.ObjectMeta, &old.ObjectMeta)
			return append(allErrs, validateCSR(csr)...)
		},
		validateStatus: func(csr, old *certificatesv1.CertificateSigningRequest) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&csr.ObjectMeta, &old.ObjectMeta)
			allErrs = append(allErrs, validateCSR(csr)...)
			if len(old.Status.Certificate) > 0 && !bytes.Equal(old.Status.Certificate, csr.Status.Certificate) {
				allErrs = append(allErrs, field.Invalid(statusPath.Child("certificate"), "<certificate data>", "updates may not modify existing certificate content"))
			}
			return allErrs
		},
		fields: func(csr *certificatesv1.CertificateSigningRequest, set fields.Set) {
			set["spec.signerName"] = csr.Spec.SignerName
		},
	})
}

// prepareCSRStatusUpdate keeps the spec and the approval conditions (those
// change through the approval subresource), and stamps new conditions.
func prepareCSRStatusUpdate(csr, old *certificatesv1.CertificateSigningRequest) {
	csr.Spec = old.Spec
	isApproval := func(t certificatesv1.RequestConditionType) bool {
		return t == certificatesv1.CertificateApproved || t == certificatesv1.CertificateDenied
	}
	var conds []certificatesv1.CertificateSigningRequestCondition
	for _, c := range old.Status.Conditions {
		if isApproval(c.Type) {
			conds = append(conds, c)
		}
	}
	t := now()
	for _, c := range csr.Status.Conditions {
		if isApproval(c.Type) {
			continue
		}
		if c.LastUpdateTime.IsZero() {
			c.LastUpdateTime = t
		}
		if c.LastTransitionTime.IsZero() {
			c.LastTransitionTime = t
			for _, o := range old.Status.Conditions {
				if o.Type == c.Type && o.Status == c.Status && !o.LastTransitionTime.IsZero() {
					c.LastTransitionTime = o.LastTransitionTime
				}
			}
		}
		conds = append(conds, c)
	}
	csr.Status.Conditions = conds
}

func validateCSR(csr *certificatesv1.CertificateSigningRequest) field.ErrorList {
	// Upstream does not restrict the names of certificate requests.
	allErrs := validateObjectMeta(&csr.ObjectMeta, false, func(string, bool) []string { return nil })
	sp := specPath
	if err := checkCSRRequest(csr.Spec.Request); err != nil {
		allErrs = append(allErrs, field.Invalid(sp.Child("request"), csr.Spec.Request, err.Error()))
	}
	if len(csr.Spec.Usages) == 0 {
		allErrs = append(allErrs, field.Required(sp.Child("usages"), ""))
	}
	seen := sets.New[certificatesv1.KeyUsage]()
	for i, u := range csr.Spec.Usages {
		if !validKeyUsages.Has(u) {
			allErrs = append(allErrs, field.NotSupported(sp.Child("usages").Index(i), u, sets.List(validKeyUsages)))
		}
		if seen.Has(u) {
			allErrs = append(allErrs, field.Duplicate(sp.Child("usages").Index(i), u))
		}
		seen.Insert(u)
	}
	if csr.Spec.SignerName == legacyUnknownSignerName {
		allErrs = append(allErrs, field.Invalid(sp.Child("signerName"), csr.Spec.SignerName, "the legacy signerName is not allowed via this API version"))
	} else {
		allErrs = append(allErrs, validateSignerName(sp.Child("signerName"), csr.Spec.SignerName)...)
	}
	if e := csr.Spec.ExpirationSeconds; e != nil && *e < 600 {
		allErrs = append(allErrs, field.Invalid(sp.Child("expirationSeconds"), *e, "may not specify a duration less than 600 seconds (10 minutes)"))
	}
	allErrs = append(allErrs, validateCSRConditions(csr.Status.Conditions, statusPath.Child("conditions"))...)
	if len(csr.Status.Certificate) > 0 {
		if err := checkCertificates(csr.Status.Certificate); err != nil {
			allErrs = append(allErrs, field.Invalid(statusPath.Child("certificate"), "<certificate data>", err.Error()))
		}
	}
	return allErrs
}

// checkCSRRequest: one PEM "CERTIFICATE REQUEST" block with a valid
// signature.
func checkCSRRequest(pemBytes []byte) error {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return errors.New("PEM block type must be CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return err
	}
	return req.CheckSignature()
}

// checkCertificates: only PEM CERTIFICATE blocks, at least one, each a valid
// certificate.
func checkCertificates(data []byte) error {
	n := 0
	for rest := data; len(bytes.TrimSpace(rest)) > 0; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return errors.New("data after last PEM block")
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("only CERTIFICATE PEM blocks are allowed, found %q", block.Type)
		}
		if len(block.Headers) != 0 {
			return errors.New("no PEM block headers are permitted")
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return errors.New("at least one CERTIFICATE PEM block is required")
	}
	return nil
}

var csrConditionTypes = sets.New(certificatesv1.CertificateApproved, certificatesv1.CertificateDenied, certificatesv1.CertificateFailed)

func validateCSRConditions(conds []certificatesv1.CertificateSigningRequestCondition, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	seen := sets.New[certificatesv1.RequestConditionType]()
	for i, c := range conds {
		p := fldPath.Index(i)
		if c.Type == "" {
			allErrs = append(allErrs, field.Required(p.Child("type"), ""))
		}
		switch c.Status {
		case v1.ConditionTrue, v1.ConditionFalse, v1.ConditionUnknown:
		case "":
			allErrs = append(allErrs, field.Required(p.Child("status"), ""))
		default:
			allErrs = append(allErrs, field.NotSupported(p.Child("status"), c.Status, []v1.ConditionStatus{v1.ConditionTrue, v1.ConditionFalse, v1.ConditionUnknown}))
		}
		if csrConditionTypes.Has(c.Type) {
			if seen.Has(c.Type) {
				allErrs = append(allErrs, field.Duplicate(p.Child("type"), c.Type))
			}
			seen.Insert(c.Type)
			if c.Type != certificatesv1.CertificateFailed && c.Status != v1.ConditionTrue {
				allErrs = append(allErrs, field.NotSupported(p.Child("status"), c.Status, []v1.ConditionStatus{v1.ConditionTrue}))
			}
		}
	}
	if seen.Has(certificatesv1.CertificateApproved) && seen.Has(certificatesv1.CertificateDenied) {
		allErrs = append(allErrs, field.Invalid(fldPath, certificatesv1.CertificateDenied, "Approved and Denied conditions are mutually exclusive"))
	}
	return allErrs
}

// validateSignerName: "<domain>/<path>", the domain with at least two
// labels.
func validateSignerName(fldPath *field.Path, name string) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	segments := strings.Split(name, "/")
	if len(segments) != 2 {
		return field.ErrorList{field.Invalid(fldPath, name, "must be a fully qualified domain and path of the form 'example.com/signer-name'")}
	}
	var allErrs field.ErrorList
	if len(segments[0]) > validation.DNS1123SubdomainMaxLength {
		allErrs = append(allErrs, field.TooLong(fldPath, "", validation.DNS1123SubdomainMaxLength))
	}
	domainLabels := strings.Split(segments[0], ".")
	for _, l := range domainLabels {
		if errs := validation.IsDNS1123Label(l); len(errs) > 0 {
			for _, e := range errs {
				allErrs = append(allErrs, field.Invalid(fldPath, segments[0], fmt.Sprintf("validating label %q: %s", l, e)))
			}
			break
		}
	}
	if len(domainLabels) < 2 {
		allErrs = append(allErrs, field.Invalid(fldPath, segments[0], "should be a domain with at least two segments separated by dots"))
	}
	for _, l := range strings.Split(segments[1], ".") {
		if errs := validation.IsDNS1123Label(l); len(errs) > 0 {
			for _, e := range errs {
				allErrs = append(allErrs, field.Invalid(fldPath, segments[1], fmt.Sprintf("validating label %q: %s", l, e)))
			}
			break
		}
	}
	return allErrs
}
