resource "google_storage_bucket_iam_member" "reader" {
  bucket = google_storage_bucket.site.name
  role   = "roles/storage.objectViewer"
  member = "group:readers@example.com"
}
