variable "name" {
  description = "The budget's name. Not one of the betcycle-<env> names that `betcycle budgets ensure` owns."
  type        = string
}

variable "monthly_limit_usd" {
  description = "Monthly cost limit in USD."
  type        = number
}

variable "thresholds_percent" {
  description = "Alert when actual spend passes each of these percentages of the limit."
  type        = list(number)
  default     = [80, 100]
}

variable "forecast_threshold_percent" {
  description = "Alert when the month's forecast passes this percentage of the limit."
  type        = number
  default     = 100
}

variable "subscriber_emails" {
  description = "Who gets the alerts."
  type        = list(string)

  validation {
    condition     = length(var.subscriber_emails) > 0
    error_message = "A budget nobody hears about is no budget: give at least one address."
  }
}
