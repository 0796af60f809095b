# Reference numbers for issue 11 (weights, exposure, R's summary quantities), from R itself.
#
#   Rscript tests/reference/glm_surface.R     # writes tests/reference/glm_surface/*.csv and glm_surface.json
#
# Needs r-base-core, r-cran-mass, r-cran-aer (Debian packages).  CI does not run R: the outputs are
# committed.  Each case writes its design (R's model.matrix, intercept column dropped: bayes_rglm
# fits its own), response, weights and offset to <case>.csv, and R's estimates to glm_surface.json.
suppressPackageStartupMessages({
  library(MASS)
  library(AER)
})
out <- "tests/reference/glm_surface"
dir.create(out, showWarnings = FALSE, recursive = TRUE)
cases <- list()

num <- function(x) unname(as.numeric(x))

write_case <- function(name, X, y, weights = NULL, offset = NULL, extra = list()) {
  X <- as.data.frame(X)
  names(X) <- make.names(names(X))
  frame <- cbind(X, y = y)
  if (!is.null(weights)) frame$weights <- weights
  if (!is.null(offset)) frame$offset <- offset
  write.csv(frame, file.path(out, paste0(name, ".csv")), row.names = FALSE)
  names(X)
}

glm_case <- function(name, fit, weights = NULL, offset = NULL, note = "", successes = FALSE) {
  mm <- model.matrix(fit)
  X <- mm[, colnames(mm) != "(Intercept)", drop = FALSE]
  y <- if (successes) fit$y * fit$prior.weights else fit$y  # a proportion with weights: successes of trials
  cols <- write_case(name, X, y, weights, offset)
  s <- summary(fit)
  co <- coef(s)
  list(
    family = fit$family$family, link = fit$family$link, note = note, columns = cols,
    coef_names = rownames(co), coef = num(co[, 1]), se_glm = num(co[, 2]), p_glm = num(co[, 4]),
    deviance = fit$deviance, null_deviance = fit$null.deviance,
    df_residual = fit$df.residual, df_null = fit$df.null,
    loglik = num(logLik(fit)), aic = AIC(fit), bic = BIC(fit), dispersion = s$dispersion,
    fitted = num(fitted(fit)),
    res_deviance = num(residuals(fit, "deviance")), res_pearson = num(residuals(fit, "pearson")),
    res_working = num(residuals(fit, "working")), res_response = num(residuals(fit, "response"))
  )
}

# 1. Poisson with prior weights and an offset: MASS::Insurance, Claims ~ District + Group + Age, exposure Holders.
ins <- Insurance
ins$Group <- factor(ins$Group, ordered = FALSE)
ins$Age <- factor(ins$Age, ordered = FALSE)
ins$w <- rep(c(1, 2, 3), length.out = nrow(ins))
f <- glm(Claims ~ District + Group + Age + offset(log(Holders)), family = poisson, data = ins, weights = w)
cases$poisson_weights_offset <- glm_case("poisson_weights_offset", f, ins$w, log(ins$Holders))

# 2. Gaussian with prior weights (the dispersion is sigma^2 / w_i): mtcars, mpg ~ wt + hp, weights carb.
f <- glm(mpg ~ wt + hp, family = gaussian, data = mtcars, weights = carb)
cases$gaussian_weights <- glm_case("gaussian_weights", f, mtcars$carb)
cases$gaussian_weights$sigma_ml <- sqrt(sum(mtcars$carb * residuals(f, "response")^2) / nrow(mtcars))

# 3. Gamma (log link) with prior weights: mtcars, mpg ~ wt, weights carb.
f <- glm(mpg ~ wt, family = Gamma(link = "log"), data = mtcars, weights = carb)
cases$gamma_weights <- glm_case("gamma_weights", f, mtcars$carb)

# 4. Binomial as proportion + weights: MASS::menarche, Menarche/Total ~ Age, weights Total.
f <- glm(Menarche / Total ~ Age, family = binomial, data = menarche, weights = Total)
cases$binomial_proportion <- glm_case("binomial_proportion", f, menarche$Total, successes = TRUE)

# 5. Bernoulli with frequency weights and a zero weight: mtcars, am ~ wt, weights gear - 3 (some 0).
f <- glm(am ~ wt, family = binomial, data = mtcars, weights = gear - 3)
cases$bernoulli_weights <- glm_case("bernoulli_weights", f, mtcars$gear - 3)

# 5b. A non-canonical link: MASS::birthwt, low ~ age + lwt + race + smoke + ptl + ht + ui + ftv, cloglog (summary.glm: expected information).
bw <- birthwt
bw$race <- factor(bw$race)
f <- glm(low ~ age + lwt + race + smoke + ptl + ht + ui + ftv, family = binomial(link = "cloglog"), data = bw)
cases$birthwt_cloglog <- glm_case("birthwt_cloglog", f)

# 5c. Aliased columns: a multiple of wt and a constant column (R: coefficients NA, "not defined because of
# singularities"), mtcars, am ~ wt + wt2 + hp + one.
mt <- mtcars
mt$wt2 <- 2 * mt$wt
mt$one <- 1
f <- glm(am ~ wt + wt2 + hp + one, family = binomial, data = mt)
cases$aliased <- glm_case("aliased", f)

# 6. Negative binomial with weights: MASS::quine, Days ~ Sex + Age + Eth + Lrn, weights 1, 2, 3, ...
q <- quine
q$w <- rep(c(1, 2, 3), length.out = nrow(q))
f <- glm.nb(Days ~ Sex + Age + Eth + Lrn, data = q, weights = w)
case <- glm_case("negbin_weights", f, q$w)
case$theta <- f$theta
case$se_theta <- f$SE.theta
case$loglik <- num(f$twologlik / 2)
cases$negbin_weights <- case

# 7. Proportional odds with frequency weights: MASS::housing, Sat ~ Infl + Type + Cont, weights Freq.
f <- polr(Sat ~ Infl + Type + Cont, data = housing, weights = Freq, Hess = TRUE)
mm <- model.matrix(~ Infl + Type + Cont, housing)[, -1]
cols <- write_case("polr_weights", mm, as.integer(housing$Sat) - 1, housing$Freq)
v <- sqrt(diag(vcov(f)))
cases$polr_weights <- list(
  family = "ordinal", link = "logit", columns = cols,
  coef_names = names(coef(f)), coef = num(coef(f)), se = num(v[names(coef(f))]),
  zeta = num(f$zeta), se_zeta = num(v[names(f$zeta)]),
  loglik = num(logLik(f)), deviance = f$deviance, aic = AIC(f)
)

# 8. Tobit with an upper bound and weights: AER::Affairs, affairs censored at 0 and 12.
data("Affairs", package = "AER")
a <- Affairs
a$w <- rep(c(1, 2), length.out = nrow(a))
f <- tobit(affairs ~ age + yearsmarried + religiousness + occupation + rating, left = 0, right = 12,
           data = a, weights = w)
mm <- model.matrix(f)[, -1]
cols <- write_case("tobit_weights", mm, a$affairs, a$w)
s <- summary(f)$coefficients
cases$tobit_weights <- list(
  family = "tobit", lower = 0, upper = 12, columns = cols,
  coef_names = names(coef(f)), coef = num(coef(f)), se = num(s[names(coef(f)), 2]),
  sigma = f$scale, se_log_sigma = num(s["Log(scale)", 2]), loglik = num(logLik(f))
)

# 9. Formulas on raw data frames with factors: fitted values and deviance do not depend on the contrasts
# (R's default for ordered factors is polynomial, formulaic's treatment), so those are what is compared.
formula_case <- function(name, formula, fit, frame) {
  write.csv(frame, file.path(out, paste0(name, ".csv")), row.names = FALSE)
  list(formula = formula, fitted = num(fitted(fit)), deviance = fit$deviance, loglik = num(logLik(fit)),
       df_residual = fit$df.residual)
}
f <- glm(breaks ~ wool * tension, family = poisson, data = warpbreaks)
wb <- data.frame(breaks = warpbreaks$breaks, wool = as.character(warpbreaks$wool),
                 tension = as.character(warpbreaks$tension))
cases$formula_warpbreaks <- formula_case("formula_warpbreaks", "breaks ~ wool * tension", f, wb)
f <- glm(Claims ~ District + Group + Age + offset(log(Holders)), family = poisson, data = Insurance)
ins2 <- data.frame(Claims = Insurance$Claims, District = as.character(Insurance$District),
                   Group = as.character(Insurance$Group), Age = as.character(Insurance$Age),
                   Holders = Insurance$Holders)
cases$formula_insurance <- formula_case("formula_insurance",
  "Claims ~ District + Group + Age + offset(np.log(Holders))", f, ins2)
f <- glm(mpg ~ log(hp) + I(wt^2) + factor(cyl), family = Gamma(link = "log"), data = mtcars)
cases$formula_mtcars <- formula_case("formula_mtcars", "mpg ~ np.log(hp) + I(wt**2) + C(cyl)", f,
                                     mtcars[, c("mpg", "hp", "wt", "cyl")])

# 10. anova of nested fits: a deviance (Chisq) test for poisson, an F test for gaussian (dispersion estimated).
an <- function(a) list(resid_df = num(a[["Resid. Df"]]), resid_dev = num(a[["Resid. Dev"]]),
                       df = num(a[["Df"]]), deviance = num(a[["Deviance"]]), p = num(a[[ncol(a)]]),
                       f = if ("F" %in% names(a)) num(a[["F"]]) else NULL)
small <- glm(breaks ~ wool, family = poisson, data = warpbreaks)
big <- glm(breaks ~ wool * tension, family = poisson, data = warpbreaks)
cases$anova_poisson <- an(anova(small, big, test = "Chisq"))
small <- glm(mpg ~ wt, family = gaussian, data = mtcars)
mid <- glm(mpg ~ wt + hp, family = gaussian, data = mtcars)
big <- glm(mpg ~ wt + hp + qsec, family = gaussian, data = mtcars)
cases$anova_gaussian <- an(anova(small, mid, big, test = "F"))
write.csv(mtcars[, c("mpg", "wt", "hp", "qsec")], file.path(out, "anova_mtcars.csv"), row.names = FALSE)

vectors <- c("columns", "coef_names", "coef", "se_glm", "p_glm", "se", "zeta", "se_zeta", "fitted",
             "res_deviance", "res_pearson", "res_working", "res_response",
             "resid_df", "resid_dev", "df", "deviance_table", "p", "f")
sink(file.path(out, "..", "glm_surface.json"))
cat(
  "{\n",
  paste(sprintf('  "%s": %s', names(cases), vapply(cases, function(case) {
    fields <- vapply(names(case), function(k) {
      v <- case[[k]]
      body <- if (is.character(v)) {
        if (length(v) == 1 && !(k %in% vectors)) sprintf('"%s"', v)
        else sprintf("[%s]", paste(sprintf('"%s"', v), collapse = ", "))
      } else if (length(v) == 1 && !(k %in% vectors)) {
        sprintf("%.17g", v)
      } else {
        sprintf("[%s]", paste(ifelse(is.na(v), "null", sprintf("%.17g", v)), collapse = ", "))
      }
      sprintf('"%s": %s', k, body)
    }, "")
    sprintf("{%s}", paste(fields, collapse = ", "))
  }, "")), collapse = ",\n"),
  "\n}\n", sep = ""
)
sink()
cat(R.version.string, "\n")
