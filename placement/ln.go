package placement

import "math"

// Constants of msun's e_log.c (Go's math.log), bit for bit.
const (
	ln2Hi = 6.93147180369123816490e-01 /* 3fe62e42 fee00000 */
	ln2Lo = 1.90821492927058770002e-10 /* 3dea39ef 35793c76 */
	lnL1  = 6.666666666666735130e-01   /* 3FE55555 55555593 */
	lnL2  = 3.999999999940941908e-01   /* 3FD99999 9997FA04 */
	lnL3  = 2.857142874366239149e-01   /* 3FD24924 94229359 */
	lnL4  = 2.222219843214978396e-01   /* 3FCC71C5 1D8E78AF */
	lnL5  = 1.818357216161805012e-01   /* 3FC74664 96CB03DE */
	lnL6  = 1.531383769920937332e-01   /* 3FC39A09 D078C69F */
	lnL7  = 1.479819860511658591e-01   /* 3FC2F112 DF3E5244 */
)

// ln is the natural logarithm of x in (0, 1) as the package documentation
// specifies it. Every intermediate is converted to float64 explicitly, which
// the Go specification says forbids fusing operations, so the result is the
// same on every architecture and in every language that follows the steps.
// It does not handle zero, negative, infinite or NaN inputs: the caller never
// passes them.
func ln(x float64) float64 {
	f1, ki := math.Frexp(x)
	if f1 < math.Sqrt2/2 {
		f1 = float64(f1 * 2)
		ki--
	}
	f := float64(f1 - 1)
	k := float64(ki)
	s := float64(f / float64(2+f))
	s2 := float64(s * s)
	s4 := float64(s2 * s2)
	t1 := float64(s2 * float64(lnL1+float64(s4*float64(lnL3+float64(s4*float64(lnL5+float64(s4*lnL7)))))))
	t2 := float64(s4 * float64(lnL2+float64(s4*float64(lnL4+float64(s4*lnL6)))))
	r := float64(t1 + t2)
	hfsq := float64(float64(0.5*f) * f)
	inner := float64(float64(s*float64(hfsq+r)) + float64(k*ln2Lo))
	return float64(float64(k*ln2Hi) - float64(float64(hfsq-inner)-f))
}
